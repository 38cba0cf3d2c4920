"""Use case: private search over users and the viewer's own messages (text and transcripts)."""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass

from resolvers.access import addressed_conversation
from resolvers.context import Context
from resolvers.cursors import decode_cursor, encode_cursor
from resolvers.errors import InvalidInput
from resolvers.users import UserView
from storage.keys import is_archived_message_entry, message_id_of_key
from storage.records import StoredMessage, StoredWord
from storage.search import MARK_CLOSE, MARK_OPEN

MAX_QUERY_LENGTH = 256
MAX_TERMS = 16
DEFAULT_RESULTS = 20
MAX_RESULTS = 50
MAX_OFFSET = 10_000  # RediSearch's default MAXSEARCHRESULTS: deeper pages are not served
SEARCH_CURSOR = "hit"
_TERM = re.compile(r"[^\W_]+")  # runs of letters and digits, in any script
_USERNAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True, slots=True)
class MessageFound:
    message: StoredMessage
    snippet: str
    matches: list[StoredWord]  # the transcript words the query matched; empty for typed text


@dataclass(frozen=True, slots=True)
class SearchOutcome:
    total: int  # users and messages that match, counting only what the viewer may see
    hits: list[UserView | MessageFound]
    cursors: list[str]  # one per hit: its position in the whole result list
    has_previous_page: bool
    has_next_page: bool


def tokenise(query: str) -> list[str]:
    """Lower-cased words of letters and digits: no query syntax survives this."""
    return _words(query)[:MAX_TERMS]


def _words(text: str) -> list[str]:
    return _TERM.findall(unicodedata.normalize("NFKC", text).lower())


_MARKED = re.compile(f"{MARK_OPEN}(.*?){MARK_CLOSE}", re.DOTALL)


def spoken_matches(marked: str, message: StoredMessage) -> list[StoredWord]:
    """The transcript words that share a word with what RediSearch highlighted in the message's
    text (the transcript): its tokenising, English stemming and prefix expansion decide, so the
    words are the ones the query matched. Words compare lower-cased, punctuation stripped."""
    if message.transcript is None or not message.transcript.words:
        return []
    highlighted = {word for fragment in _MARKED.findall(marked) for word in _words(fragment)}
    return [w for w in message.transcript.words if highlighted.intersection(_words(w.word))]


SNIPPET_WIDTH = 160


def snippet(marked: str, text: str, width: int = SNIPPET_WIDTH) -> str:
    """A short HTML-escaped excerpt around the first match, matches in <b>…</b>, cut at
    spaces. `marked` is the text with matches between MARK_OPEN and MARK_CLOSE."""
    if not marked or MARK_OPEN in text or MARK_CLOSE in text:  # markers of the user's own
        marked = text.replace(MARK_OPEN, "").replace(MARK_CLOSE, "")
    first = max(marked.find(MARK_OPEN), 0)
    start = max(first - width // 3, 0)
    if start > 0:
        space = marked.rfind(" ", 0, start)
        start = space + 1 if space != -1 and start - space < 20 else start
    end = min(start + width, len(marked))
    if end < len(marked):
        space = marked.find(" ", end)
        end = space if space != -1 and space - end < 20 else end
    segment = marked[start:end]
    open_at, close_at = segment.find(MARK_OPEN), segment.find(MARK_CLOSE)
    if close_at != -1 and (open_at == -1 or close_at < open_at):
        segment = MARK_OPEN + segment  # cut inside a highlighted word
    if segment.count(MARK_OPEN) > segment.count(MARK_CLOSE):
        segment += MARK_CLOSE
    escaped = html.escape(segment).replace(MARK_OPEN, "<b>").replace(MARK_CLOSE, "</b>")
    return ("…" if start > 0 else "") + escaped + ("…" if end < len(marked) else "")


async def search(
    ctx: Context, *, query: str, first: int | None, after: str | None, conversation_id: str | None,
    partner_id: str | None,
) -> SearchOutcome:
    """Users first, then messages; `after` (a hit's cursor) pages forward through both."""
    viewer_id = ctx.require_viewer()
    first = DEFAULT_RESULTS if first is None else first  # an explicit null means the default
    await ctx.rate_limit("search", viewer_id)
    query = query.strip()
    if not query:
        raise InvalidInput("query must not be empty", field="query")
    if len(query) > MAX_QUERY_LENGTH:
        raise InvalidInput(f"query must be at most {MAX_QUERY_LENGTH} characters", field="query")
    if not 1 <= first <= MAX_RESULTS:
        raise InvalidInput(f"first must be between 1 and {MAX_RESULTS}", field="first")
    offset = 0
    if after is not None:
        position = decode_cursor(after, SEARCH_CURSOR, field="after")
        if not position.isdigit() or int(position) >= MAX_OFFSET:
            raise InvalidInput("Malformed cursor", field="after")
        offset = int(position) + 1
    if conversation_id is not None and partner_id is not None:
        raise InvalidInput("give at most one of conversationId and partnerId", field="conversationId")
    runtime = ctx.runtime
    scoped = conversation_id is not None or partner_id is not None
    if scoped:
        found = await addressed_conversation(ctx, viewer_id, conversation_id=conversation_id, partner_id=partner_id,
                                             create=False)
        scope = [found.id] if found is not None else []
    else:
        scope = await runtime.conversations.member_of(viewer_id, await runtime.conversation_lists.all_ids(viewer_id))

    hits: list[UserView | MessageFound] = []
    total = 0
    last_word = _USERNAME_CHARS.sub("", query.split()[-1]) if query.split() else ""
    user_total = 0
    if not scoped and len(last_word) >= 2:
        user_total, user_ids = await runtime.search.usernames(prefix=last_word, limit=first, offset=offset)
        total += user_total
        loaded = [await ctx.user_loader.load(i) for i in user_ids]
        hits += [u for u in loaded if u is not None]
    terms = tokenise(query)
    if terms:
        message_total, matches = await runtime.search.messages(
            conversation_ids=scope, terms=terms, prefix_last=not query[-1].isspace(),
            limit=first - len(hits), offset=max(offset - user_total, 0),
        )
        total += message_total
        hot = [m.key for m in matches if not is_archived_message_entry(m.key)]
        stored = {m.id: m for m in await runtime.messages.get_hot_keys(hot)}
        # archived ones, and hot ones trimmed since the query, come from MongoDB
        stored |= await runtime.search.archived([m for m in matches if message_id_of_key(m.key) not in stored])
        allowed = set(scope)
        for match in matches:
            message = stored.get(message_id_of_key(match.key))
            if message is not None and message.conversation_id in allowed:
                hits.append(MessageFound(message=message, snippet=snippet(match.marked_text, message.text),
                                         matches=spoken_matches(match.marked_text, message)))
    hits = hits[:first]
    return SearchOutcome(
        total=total, hits=hits, cursors=[encode_cursor(SEARCH_CURSOR, str(offset + i)) for i in range(len(hits))],
        has_previous_page=offset > 0, has_next_page=offset + len(hits) < total,
    )
