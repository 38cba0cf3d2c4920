"""The translation point: client errors keep their code, everything else is masked."""

from __future__ import annotations

import logging

import pytest
from graphql import GraphQLError

from resolvers.errors import Conflict
from schema.errors import translate_error
from storage.pubsub import PubSubConnectionLost, SubscriberTooSlow


def test_client_error_keeps_message_code_and_extensions() -> None:
    error = GraphQLError("x", original_error=Conflict("username is already taken", field="username"))
    translate_error(error)
    assert error.formatted["message"] == "username is already taken"
    assert error.formatted["extensions"] == {"code": "CONFLICT", "field": "username"}


def test_graphql_errors_are_bad_user_input() -> None:
    error = GraphQLError("Cannot query field 'nope' on type 'User'.")
    translate_error(error)
    assert error.formatted["extensions"] == {"code": "BAD_USER_INPUT"}


def test_unexpected_errors_are_masked_and_logged_with_an_id(caplog: pytest.LogCaptureFixture) -> None:
    try:
        raise RuntimeError("connection to db.internal:27017 failed at /srv/app/storage.py")
    except RuntimeError as exc:
        error = GraphQLError(str(exc), original_error=exc)
    with caplog.at_level(logging.ERROR, logger="chattergram.errors"):
        translate_error(error, "Login")
    formatted = error.formatted
    error_id = formatted["extensions"]["errorId"]
    assert formatted["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "db.internal" not in str(formatted) and "storage.py" not in str(formatted)
    record = caplog.records[-1]
    assert record.error_id == error_id and record.exc_info is not None
    assert "db.internal" in str(record.exc_info[1])


@pytest.mark.parametrize(("interrupted", "reason"), [(PubSubConnectionLost("cg:events:user:1"), "CONNECTION_LOST"),
                                                     (SubscriberTooSlow("cg:events:user:1"), "SUBSCRIBER_TOO_SLOW")])
def test_an_interrupted_subscription_says_resubscribe_and_why(interrupted: Exception, reason: str) -> None:
    error = GraphQLError("x", original_error=interrupted)
    translate_error(error)
    assert error.formatted["extensions"] == {"code": "RESUBSCRIBE", "reason": reason}
    assert "subscribe again" in error.formatted["message"] and "cg:events" not in error.formatted["message"]
