"""The client's exceptions as application code handles them: pickled across processes, copied."""

from __future__ import annotations

import copy
import pickle

import httpx
import pytest

from backburner.client import ApiError, BadAnswer, Conflict, NotFound, Unauthorized, Unreachable

ERRORS = [
    ApiError(400, "invalid_input", "delay must be at most a year"),
    NotFound(404, "run_not_found", "No run with id 'x'"),
    Unauthorized(401, "unauthorized", "a bearer token is needed"),
    Conflict(409, "conflict", "the run is already cancelled"),
    BadAnswer(200, "bad_answer", "the answer is not Backburner's JSON (text/plain): 'hello'"),
    Unreachable("http://127.0.0.1:1", httpx.ConnectError("connection refused")),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda error: type(error).__name__)
def test_errors_survive_pickle_and_copy_with_their_attributes(error: ApiError) -> None:
    for again in (pickle.loads(pickle.dumps(error)), copy.copy(error), copy.deepcopy(error)):
        assert type(again) is type(error)
        assert (again.status, again.code, again.message) == (error.status, error.code, error.message)
        assert str(again) == str(error) and again.args == error.args
    if isinstance(error, Unreachable):
        assert pickle.loads(pickle.dumps(error)).url == "http://127.0.0.1:1"


def test_unreachable_names_a_cause_without_a_message_by_its_type() -> None:
    assert "(ReadTimeout)" in Unreachable("http://127.0.0.1:1", httpx.ReadTimeout("")).message
    assert "(connection refused)" in Unreachable("http://127.0.0.1:1", httpx.ConnectError("connection refused")).message
