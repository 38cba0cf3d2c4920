"""`chattergram reports`: what an operator reads of reported messages, newest first."""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import UTC, datetime

from api.app_server import CHATTERGRAM, REPO
from api.report_listing import table
from storage.reports import StoredReport
from tests.api.test_cli import CLEAN_ENV
from tests.utils.graphql import register
from tests.utils.in_process import InProcessApps

REPORT = "mutation R($m: ID!, $r: String!) { reportMessage(messageId: $m, reason: $r) }"
SEND = "mutation S($input: SendMessageInput!) { sendMessage(input: $input) { id conversationId } }"


def reports(mongodb_url: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**CLEAN_ENV, **({"MONGODB_URL": mongodb_url} if mongodb_url else {})}
    return subprocess.run([str(CHATTERGRAM), "reports", *args], env=env, capture_output=True, text=True,
                          timeout=60, cwd=REPO)


async def test_reports_lists_newest_first_as_a_table_or_json_lines(in_process_apps: InProcessApps) -> None:
    app = await in_process_apps.start()  # a database of its own: exactly these reports
    assert reports(app.mongodb_url).stdout == "no reports\n"
    async with app.client() as gql:
        alice, bob = await register(gql), await register(gql)
        sent = []
        for text in ("first\nspam line", "second spam " + "x" * 60):
            sent.append((await gql.ok(SEND, {"input": {"receiverId": alice.id, "text": text}},
                                      token=bob.token))["sendMessage"])
        for message, reason in zip(sent, ("unwanted ads", "same again"), strict=True):
            await gql.ok(REPORT, {"m": message["id"], "r": reason}, token=alice.token)
            await asyncio.sleep(0.01)  # distinct report times

    listed = await asyncio.to_thread(reports, app.mongodb_url, "--json")
    assert listed.returncode == 0, listed.stderr
    lines = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["message_id"], r["reason"]) for r in lines] == [(sent[1]["id"], "same again"),
                                                               (sent[0]["id"], "unwanted ads")]
    assert lines[1] | {"reported_at": None, "sent_at": None} == {
        "message_id": sent[0]["id"], "conversation_id": sent[0]["conversationId"], "sender_id": bob.id,
        "reporter_id": alice.id, "reason": "unwanted ads", "kind": "TEXT", "text": "first\nspam line",
        "transcript": None, "reported_at": None, "sent_at": None}

    shown = await asyncio.to_thread(reports, app.mongodb_url, "--limit", "1")
    header, row = shown.stdout.splitlines()
    assert header.split() == ["reported", "at", "reporter", "sender", "conversation", "message", "kind", "reason",
                              "content"]
    assert row.split()[2:5] == [alice.id, bob.id, sent[1]["conversationId"]]
    assert row.endswith("second spam " + "x" * 27 + "…")  # cut to one readable line


def test_reports_needs_mongodb_url() -> None:
    result = reports(None)
    assert result.returncode == 2 and "MONGODB_URL" in result.stderr


def test_a_voice_report_shows_its_transcript() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    voice = StoredReport(message_id="m", conversation_id="c", sender_id="s", reporter_id="r", reason="rude",
                         kind="VOICE", text="", transcript="you again", sent_at=at, reported_at=at)
    assert table([voice]).splitlines()[1].split() == ["2026-01-02", "03:04:05Z", "r", "s", "c", "m", "VOICE",
                                                      "rude", "[voice]", "you", "again"]
