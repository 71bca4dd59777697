"""Webhooks: signatures checked by the standardwebhooks reference library, deliveries against real loopback
receivers, the SSRF guard and the retry schedule."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from jobs.delivery.webhooks import (
    RETRY_SCHEDULE_S,
    Attempt,
    deliver,
    generate_secret,
    next_delay,
    parse_retry_after,
    signer,
)
from jobs.errors import ConfigError, InvalidInput
from tests.support.http import WebhookReceiver

LOOPBACK = ["127.0.0.1", "localhost"]
Receivers = Callable[..., WebhookReceiver]
RUN = {"id": "run_01", "function": "daily-report", "status": "succeeded", "result": {"rows": 3, "ünï": "✓"}}


@pytest.fixture
def secret() -> str:
    return generate_secret()


def send(url: str, secret: str, attempt: int = 1, **kwargs: object) -> Attempt:
    options: dict[str, object] = {"allow": LOOPBACK, "timeout_s": 5.0, **kwargs}
    return deliver(url, "msg_2x1", "run.succeeded", RUN, secret=secret, attempt=attempt, **options)  # type: ignore[arg-type]


# -- signing (by the standardwebhooks library; each request checked with its verifier) ---------------------


@pytest.mark.parametrize("data", [{}, {"a": 1, "b": "ü", "c": "✓"}, {"x": "x" * 10_000}])
def test_what_is_sent_verifies_with_the_reference_library(webhook_receiver: Receivers, data: dict) -> None:
    secret, receiver = generate_secret(), webhook_receiver()
    assert deliver(receiver.url, "msg_1", "run.succeeded", data, secret=secret, attempt=1, allow=LOOPBACK).ok
    (request,) = receiver.wait_for(1)
    assert Webhook(secret).verify(request.body, request.headers)["data"] == data
    later = {**request.headers, "webhook-timestamp": str(int(request.headers["webhook-timestamp"]) + 1)}
    with pytest.raises(WebhookVerificationError):  # the signature covers the timestamp
        Webhook(secret).verify(request.body, later)


def test_unpadded_secrets_sign_as_the_reference_reads_them(webhook_receiver: Receivers) -> None:
    raw = base64.b64encode(b"k" * 25).decode()
    assert raw.endswith("==")
    secret, receiver = "whsec_" + raw.rstrip("="), webhook_receiver()
    assert send(receiver.url, secret).ok
    (request,) = receiver.wait_for(1)
    assert Webhook(raw).verify(request.body, request.headers)["data"] == RUN


def test_generate_secret() -> None:
    first, second = generate_secret(), generate_secret()
    assert first.startswith("whsec_") and first != second
    assert len(base64.b64decode(first.removeprefix("whsec_"))) == 32
    assert signer(first).sign("m", datetime.fromtimestamp(1, UTC), b"x").startswith("v1,")


def test_two_secrets_sign_each_delivery_twice_so_receivers_can_move_to_the_new_one(
    webhook_receiver: Receivers,
) -> None:
    """Standard Webhooks' rotation: one signature per secret in the header; a receiver knowing either verifies."""
    old, new, receiver = generate_secret(), generate_secret(), webhook_receiver()
    assert send(receiver.url, f"{new} {old}").ok
    (request,) = receiver.wait_for(1)
    assert len(request.headers["webhook-signature"].split()) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(request.body, request.headers)["data"] == RUN


@pytest.mark.parametrize(
    ("secret", "said"),
    [
        ("whsec_" + base64.b64encode(b"k" * 2).decode(), "holds 2 bytes: expected 'whsec_' followed by the base64"),
        ("whsec_" + base64.b64encode(b"k" * 65).decode(), "holds 65 bytes"),
        (generate_secret() + " trailing", "secret 2 of 2 does not start with 'whsec_'"),
        (generate_secret() + ",whsec_AAAA", "is not valid: expected 'whsec_' followed by base64"),
    ],
)
def test_a_secret_no_receiver_could_trust_is_a_config_error_that_says_why(
    webhook_receiver: Receivers, secret: str, said: str
) -> None:
    receiver = webhook_receiver()
    with pytest.raises(ConfigError) as refused:
        send(receiver.url, secret)
    assert said in refused.value.message and secret not in refused.value.message
    assert receiver.requests == []


@pytest.mark.parametrize("secret", ["whsec_", "", "whsec_a", "whsec_!!!"])
def test_a_secret_that_is_not_one_is_a_config_error_and_nothing_is_sent(
    webhook_receiver: Receivers, secret: str
) -> None:
    receiver = webhook_receiver()
    with pytest.raises(ConfigError, match="whsec_"):
        send(receiver.url, secret)
    assert receiver.requests == []


# -- delivery against real receivers ----------------------------------------------------------------------


def test_success_is_signed_and_verifiable(webhook_receiver: Receivers, secret: str) -> None:
    receiver = webhook_receiver()
    before = int(time.time())
    attempt = send(receiver.url, secret)
    assert attempt.ok and attempt.status == 200 and attempt.error is None and not attempt.gone
    assert (attempt.url, attempt.webhook_id, attempt.attempt) == (receiver.url, "msg_2x1", 1)
    assert attempt.at.endswith("Z") and attempt.duration_ms > 0 and attempt.retry_after_s is None

    (request,) = receiver.wait_for(1)
    assert request.method == "POST"
    assert Webhook(secret).verify(request.body, request.headers) == {
        "type": "run.succeeded",
        "timestamp": json.loads(request.body)["timestamp"],
        "data": RUN,
    }
    assert request.headers["webhook-id"] == "msg_2x1"
    assert before <= int(request.headers["webhook-timestamp"]) <= int(time.time())
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("Backburner/")
    assert request.body == json.dumps(json.loads(request.body), separators=(",", ":"), ensure_ascii=False).encode()
    with pytest.raises(Exception, match="signature"):
        Webhook(generate_secret()).verify(request.body, request.headers)


def test_failure_then_success_same_id_same_body(webhook_receiver: Receivers, secret: str) -> None:
    receiver = webhook_receiver(fail_first=1, fail_status=500, body=b"database is down")
    occurred = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    first = send(receiver.url, secret, attempt=1, occurred_at=occurred)
    assert not first.ok and first.status == 500 and first.error == "HTTP 500: database is down"
    assert next_delay(first.attempt, first.retry_after_s) == RETRY_SCHEDULE_S[0]
    second = send(receiver.url, secret, attempt=2, occurred_at=occurred)
    assert second.ok and second.attempt == 2

    one, two = receiver.wait_for(2)
    assert one.headers["webhook-id"] == two.headers["webhook-id"] == "msg_2x1"
    assert one.body == two.body and json.loads(one.body)["timestamp"] == "2030-01-02T03:04:05.000Z"
    for request in (one, two):
        Webhook(secret).verify(request.body, request.headers)


@pytest.mark.parametrize("follow", [False, True], ids=["own-client", "caller-client-that-follows"])
def test_redirects_are_not_followed(webhook_receiver: Receivers, secret: str, follow: bool) -> None:
    elsewhere = webhook_receiver()
    receiver = webhook_receiver(status=302, location=elsewhere.url)
    with httpx.Client(follow_redirects=True) as client:
        attempt = send(receiver.url, secret, client=client if follow else None)
    assert not attempt.ok and attempt.status == 302
    assert attempt.error is not None and "not followed" in attempt.error and elsewhere.url in attempt.error
    assert len(receiver.wait_for(1)) == 1
    assert elsewhere.requests == []  # deliver() has returned: a followed redirect would be here already


def test_gone_disables(webhook_receiver: Receivers, secret: str) -> None:
    attempt = send(webhook_receiver(status=410).url, secret)
    assert attempt.gone and not attempt.ok and attempt.status == 410


def test_retry_after_seconds_and_date(webhook_receiver: Receivers, secret: str) -> None:
    attempt = send(webhook_receiver(status=429, retry_after="120").url, secret)
    assert (attempt.status, attempt.retry_after_s) == (429, 120.0)
    assert next_delay(1, attempt.retry_after_s) == 120.0

    when = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    attempt = send(webhook_receiver(status=503, retry_after=when).url, secret)
    assert attempt.retry_after_s is not None and 85 <= attempt.retry_after_s <= 90


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("", None),
        ("soon", None),
        ("0", 0.0),
        ("2.5", 2.5),
        ("-4", 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def test_slow_endpoint_times_out(webhook_receiver: Receivers, secret: str) -> None:
    receiver = webhook_receiver(delay_s=30)
    started = time.monotonic()
    attempt = send(receiver.url, secret, timeout_s=0.3)
    assert time.monotonic() - started < 3
    assert not attempt.ok and attempt.status is None
    assert attempt.error is not None and attempt.error.startswith("timed out after 0.3 s")
    assert len(receiver.wait_for(1)) == 1


def test_down_endpoint_then_back(webhook_receiver: Receivers, secret: str) -> None:
    receiver = webhook_receiver()
    receiver.stop()
    attempt = send(receiver.url, secret)
    assert not attempt.ok and attempt.status is None
    assert attempt.error is not None and attempt.error.startswith("connection to 127.0.0.1 failed")
    receiver.start()  # same port
    assert send(receiver.url, secret, attempt=2).ok
    assert len(receiver.wait_for(1)) == 1


def test_host_name_url_keeps_its_host_header(webhook_receiver: Receivers, secret: str) -> None:
    receiver = webhook_receiver()
    assert send(f"http://localhost:{receiver.port}/hook", secret).ok
    assert receiver.wait_for(1)[0].headers["host"] == f"localhost:{receiver.port}"


def test_recorded_url_drops_credentials_and_query(webhook_receiver: Receivers, secret: str) -> None:
    receiver = webhook_receiver()
    attempt = send(f"http://user:pw@127.0.0.1:{receiver.port}/hook?token=abc", secret)
    assert attempt.ok and attempt.url == receiver.url
    (request,) = receiver.wait_for(1)
    assert request.path == "/hook?token=abc" and request.headers["authorization"].startswith("Basic ")


def test_unresolvable_host_is_a_failed_attempt_not_an_exception(secret: str) -> None:
    attempt = send("http://bad..host/hook", secret)
    assert not attempt.ok and attempt.error is not None and "cannot resolve" in attempt.error
    assert attempt.status is None and not attempt.gone  # an endpoint problem: the caller retries later


def test_refused_url_and_bad_payload_raise(secret: str) -> None:
    with pytest.raises(InvalidInput, match="BACKBURNER_WEBHOOK_ALLOW"):
        deliver("http://127.0.0.1:9/hook", "m", "t", {}, secret=secret, attempt=1)
    with pytest.raises(InvalidInput, match="JSON"):
        deliver("http://127.0.0.1:9/", "m", "t", {"x": object()}, secret=secret, attempt=1, allow=LOOPBACK)
    with pytest.raises(InvalidInput, match="JSON"):
        deliver("http://127.0.0.1:9/", "m", "t", {"x": float("nan")}, secret=secret, attempt=1, allow=LOOPBACK)


# -- the SSRF guard, through deliver ----------------------------------------------------------------------


def sent_to(url: str, allow: Sequence[str] = ()) -> list[str]:
    """Deliver to ``url`` over a transport that answers 204 without touching the network; the hosts the
    request went to (plain http goes to the addresses the guard approved). InvalidInput if refused."""
    hosts: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        return httpx.Response(204)

    with httpx.Client(transport=httpx.MockTransport(answer)) as client:
        attempt = deliver(
            url, "m", "run.succeeded", {}, secret=generate_secret(), attempt=1, allow=allow, client=client
        )
    assert attempt.ok, attempt
    return hosts


REFUSED = [
    ("http://127.0.0.1/hook", "127.0.0.1", "loopback"),
    ("http://127.9.9.9:8080/", "127.9.9.9", "loopback"),
    ("http://localhost:8888/hook", "127.0.0.1", "loopback"),
    ("http://[::1]/hook", "::1", "loopback"),
    ("http://2130706433/", "127.0.0.1", "loopback"),  # the resolver's view counts, not the URL's spelling
    ("http://0x7f.1/", "127.0.0.1", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1", "loopback"),
    ("http://0.0.0.0/", "0.0.0.0", "unspecified"),
    ("http://10.1.2.3/", "10.1.2.3", "private"),
    ("http://172.16.0.1/", "172.16.0.1", "private"),
    ("http://192.168.1.20/", "192.168.1.20", "private"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254", "link-local"),
    ("http://[fe80::1]/", "fe80::1", "link-local"),
    ("http://[fd00::1]/", "fd00::1", "private"),
    ("http://224.0.0.1/", "224.0.0.1", "multicast"),
    ("http://100.64.0.1/", "100.64.0.1", "non-public"),
    ("https://240.0.0.1/", "240.0.0.1", "reserved"),
]


@pytest.mark.parametrize(("url", "address", "reason"), REFUSED)
def test_guard_refuses_internal_addresses(url: str, address: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        sent_to(url)
    message = caught.value.message
    assert repr(url) in message and address in message and f"a {reason} address" in message
    assert "set BACKBURNER_WEBHOOK_ALLOW=<host or CIDR>" in message.replace("Set", "set")


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://93.184.216.34/hook", "93.184.216.34"),
        ("http://8.8.8.8:8080/x?y=1", "8.8.8.8"),
        ("https://[2606:4700:4700::1111]/", "2606:4700:4700::1111"),
    ],
)
def test_guard_allows_public_ip_literals_without_dns(url: str, host: str) -> None:
    assert sent_to(url) == [host]


@pytest.mark.parametrize(
    ("url", "allow"),
    [
        ("http://127.0.0.1:9/", ["127.0.0.1"]),
        ("http://localhost:9/", ["localhost"]),
        ("http://LOCALHOST.:9/", [" localhost "]),
        ("http://[::1]/", ["::1"]),
        ("http://[::1]/", ["[::1]"]),
        ("http://10.1.2.3/", ["10.0.0.0/8"]),
        ("http://192.168.1.5/", ["192.168.1.0/24", "example.com"]),
        ("http://169.254.169.254/", ["169.254.0.0/16"]),
        ("http://[::ffff:10.0.0.1]/", ["10.0.0.0/8"]),
    ],
)
def test_guard_allow_list(url: str, allow: list[str]) -> None:
    assert len(sent_to(url, allow)) == 1


@pytest.mark.parametrize(
    ("url", "allow"),
    [
        ("http://10.1.2.3/", ["192.168.0.0/16"]),
        ("http://10.1.2.3/", ["10.1.2.4"]),
        ("http://127.0.0.1/", ["local"]),
    ],
)
def test_guard_allow_list_is_exact(url: str, allow: list[str]) -> None:
    with pytest.raises(InvalidInput):
        sent_to(url, allow)


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/x", "file:///etc/passwd", "gopher://example.com/", "example.com/hook", "http:///x"],
)
def test_guard_refuses_other_schemes_and_hostless_urls(url: str) -> None:
    with pytest.raises(InvalidInput, match="refused"):
        sent_to(url)


# -- the retry schedule -----------------------------------------------------------------------------------


def test_retry_schedule_spans_hours_and_grows() -> None:
    assert 3600 <= sum(RETRY_SCHEDULE_S) <= 12 * 3600
    assert list(RETRY_SCHEDULE_S) == sorted(RETRY_SCHEDULE_S)
    assert next_delay(len(RETRY_SCHEDULE_S)) is not None and next_delay(len(RETRY_SCHEDULE_S) + 1) is None


@pytest.mark.parametrize(
    ("attempt", "retry_after", "expected"),
    [
        (1, None, 5.0),
        (2, None, 30.0),
        (7, None, 7200.0),
        (8, None, None),
        (1, 60.0, 60.0),
        (1, 2.0, 5.0),
        (1, 10**6, 3600.0),
        (7, 10**6, 7200.0),
        (8, 60.0, None),
    ],
)
def test_next_delay(attempt: int, retry_after: float | None, expected: float | None) -> None:
    assert next_delay(attempt, retry_after) == expected


def test_next_delay_counts_from_one() -> None:
    with pytest.raises(ValueError):
        next_delay(0, None)


def test_a_disabled_webhook_is_shown_and_enabled_without_its_credentials(runtime) -> None:
    """Listings show a URL without user info or query (either may hold a credential); enabling takes either form."""
    from jobs.delivery.outbox import disabled_endpoints, enable_endpoints
    from jobs.errors import Conflict

    gone = runtime.store.keys.webhooks_gone("notify-background")
    full = "https://ops:Hunter22-pass@hooks.example.com/alert?key=Qu3ry-key"
    runtime.client.sadd(gone, full)

    with pytest.raises(Conflict) as refused:
        enable_endpoints(runtime.client, runtime.store.keys, "notify-background", "https://u:other-pass@elsewhere/x")
    assert "Hunter22" not in str(refused.value) and "other-pass" not in str(refused.value)
    assert "(disabled: https://hooks.example.com/alert)" in str(refused.value)
    assert disabled_endpoints(runtime.client, runtime.store.keys, ["notify-background"]) == {
        "notify-background": [full]
    }
    shown = enable_endpoints(runtime.client, runtime.store.keys, "notify-background", "https://hooks.example.com/alert")
    assert shown == ["https://hooks.example.com/alert"]
    assert not runtime.client.exists(gone)
