"""How `chattergram reports` prints reported messages: a table to read, or JSON lines to pipe."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime

import orjson

from storage.reports import StoredReport

COLUMNS = ("reported at", "reporter", "sender", "conversation", "message", "kind", "reason", "content")
WIDE = 40  # reason and content are cut to this many characters in the table


def _time(at: datetime) -> str:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _cut(text: str) -> str:
    text = " ".join(text.split())  # one line per report, whatever the message held
    return text if len(text) <= WIDE else text[:WIDE - 1] + "…"


def _content(report: StoredReport) -> str:
    if report.kind == "VOICE":
        return f"[voice] {report.transcript}" if report.transcript else "[voice, no transcript]"
    return report.text


def table(reports: Sequence[StoredReport]) -> str:
    if not reports:
        return "no reports\n"
    rows = [COLUMNS, *((_time(r.reported_at), r.reporter_id, r.sender_id, r.conversation_id, r.message_id,
                        r.kind, _cut(r.reason), _cut(_content(r))) for r in reports)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return "".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n"
                   for row in rows)


def json_lines(reports: Sequence[StoredReport]) -> str:
    return "".join(orjson.dumps({**dataclasses.asdict(r), "sent_at": _time(r.sent_at),
                                 "reported_at": _time(r.reported_at)}).decode() + "\n" for r in reports)
