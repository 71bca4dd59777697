import base64

from jobs.event import build_event, is_text, payload_event


def event(body: bytes = b"", content_type: str | None = None, method: str = "POST"):
    headers = [("Host", "x"), ("X-Multi", "a"), ("X-Multi", "b")]
    if content_type:
        headers.append(("Content-Type", content_type))
    return build_event(
        method=method,
        url="http://x/.netlify/functions/f?a=1&a=2&b=3",
        path="/.netlify/functions/f",
        raw_query="a=1&a=2&b=3",
        headers=headers,
        query=[("a", "1"), ("a", "2"), ("b", "3")],
        body=body,
    )


def test_event_has_every_v1_field_with_multi_values_joined_and_kept():
    e = event(b'{"x": 1}', "application/json")
    assert set(e) == {
        "rawUrl",
        "rawQuery",
        "path",
        "httpMethod",
        "headers",
        "multiValueHeaders",
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "body",
        "isBase64Encoded",
    }
    assert e["headers"]["x-multi"] == "a, b"
    assert e["multiValueHeaders"]["x-multi"] == ["a", "b"]
    assert e["queryStringParameters"] == {"a": "1, 2", "b": "3"}
    assert e["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": ["3"]}
    assert e["rawQuery"] == "a=1&a=2&b=3"
    assert e["body"] == '{"x": 1}' and e["isBase64Encoded"] is False


def test_binary_and_untyped_bodies_are_base64_encoded():
    raw = bytes(range(256))
    for content_type in ("application/octet-stream", "image/png", None):
        e = event(raw, content_type)
        assert e["isBase64Encoded"] is True
        assert base64.b64decode(e["body"]) == raw


def test_netlify_text_types():
    for text in (
        "text/plain",
        "text/csv; charset=utf-8",
        "application/json",
        "application/vnd.api+json",
        "application/atom+xml",
        "application/x-www-form-urlencoded",
        "application/graphql",
    ):
        assert is_text(text), text
    for binary in ("application/pdf", "application/zip", "", None):
        assert not is_text(binary), binary


def test_get_without_body_has_null_body():
    e = event(method="GET")
    assert e["body"] is None and e["isBase64Encoded"] is False


def test_payload_event_is_a_json_post():
    e = payload_event("f-background", {"next_run": "2026-01-01T00:00:00Z"}, headers={"x-nf-event": "schedule"})
    assert e["httpMethod"] == "POST"
    assert e["body"] == '{"next_run": "2026-01-01T00:00:00Z"}'
    assert e["headers"]["x-nf-event"] == "schedule"
    assert e["multiValueHeaders"]["content-type"] == ["application/json"]
