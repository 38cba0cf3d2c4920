"""Use cases: edit a message, delete it for everyone, react to it and take a reaction back.

Each is decided on the message as stored and written through `MessageChanges`, which decides
again when another change landed first (revision-checked), so an edit against a delete, a
delete against a transcript landing, or two reactions at once end the same everywhere.
"""

from __future__ import annotations

import dataclasses
import unicodedata

from resolvers.access import now_ms, parse_id, visible_message
from resolvers.context import Context
from resolvers.errors import Conflict, Forbidden, InvalidInput, NotFound
from resolvers.messages import normalise_text
from storage.message_changes import Change, Decide, MessageKeptChanging
from storage.records import StoredMessage, tombstone

MAX_REACTIONS = 20  # distinct emoji per message
MAX_EMOJI_CODE_POINTS = 16  # the longest RGI sequences (families, flags of regions) are shorter

_ZWJ, _VS16, _KEYCAP, _TAG_END = "\u200d", "\ufe0f", "\u20e3", "\U000e007f"
_SKIN_TONES = range(0x1F3FB, 0x1F400)
_REGIONAL = range(0x1F1E6, 0x1F200)
_TAGS = range(0xE0020, 0xE007F)
# Where emoji code points are (UTS #51's Extended_Pictographic, in blocks; no data package needed).
_PICTOGRAPHIC = (range(0x1F000, 0x1FB00), range(0x2600, 0x2800), range(0x2300, 0x2400), range(0x2B00, 0x2C00),
                 range(0x2190, 0x2200), range(0x25A0, 0x2600), range(0x2900, 0x2980), range(0x3030, 0x3031),
                 range(0x303D, 0x303E), range(0x3297, 0x3298), range(0x3299, 0x329A))
_PICTOGRAPHIC_SINGLES = {0xA9, 0xAE, 0x203C, 0x2049, 0x2122, 0x2139, 0x24C2}


def _pictographic(char: str) -> bool:
    point = ord(char)
    return (point in _PICTOGRAPHIC_SINGLES or any(point in block for block in _PICTOGRAPHIC)) and (
        point not in _SKIN_TONES and point not in _REGIONAL and unicodedata.category(char) == "So"
    )


def _is_element(element: str) -> bool:
    """One emoji of a ZWJ sequence: a pictograph, then optionally a skin tone and/or VS16."""
    if not element or not _pictographic(element[0]):
        return False
    rest = element[1:]
    if rest[:1] and ord(rest[0]) in _SKIN_TONES:
        rest = rest[1:]
    return rest in ("", _VS16)


def is_single_emoji(value: str) -> bool:
    """One emoji grapheme: a flag (two regional indicators), a keycap (0-9 # * with VS16 and
    U+20E3), a tag sequence (a subdivision flag), or pictographs joined by ZWJ, each with an
    optional skin tone and VS16."""
    if not value or len(value) > MAX_EMOJI_CODE_POINTS:
        return False
    if len(value) == 2 and all(ord(c) in _REGIONAL for c in value):
        return True
    if value[0] in "0123456789#*" and value[1:] in (_KEYCAP, _VS16 + _KEYCAP):
        return True
    if value.endswith(_TAG_END) and len(value) > 2:
        base, tags = value[0], value[1:-1]
        return _pictographic(base) and bool(tags) and all(ord(c) in _TAGS for c in tags)
    return all(_is_element(element) for element in value.split(_ZWJ))


def validate_emoji(emoji: str) -> str:
    emoji = unicodedata.normalize("NFC", emoji.strip()) if isinstance(emoji, str) else ""
    if not is_single_emoji(emoji):
        raise InvalidInput("emoji must be exactly one emoji", field="emoji")
    return emoji


async def _message(ctx: Context, viewer_id: str, message_id: str, *, field: str) -> StoredMessage:
    """The message if the viewer is a member of its conversation (NOT_FOUND otherwise)."""
    message_id = parse_id(message_id, field=field)
    return await visible_message(ctx, viewer_id, await ctx.runtime.messages.find(message_id), field=field)


async def _own_message(ctx: Context, viewer_id: str, message_id: str) -> StoredMessage:
    """The message if the viewer sent it; a member who did not is FORBIDDEN."""
    message = await _message(ctx, viewer_id, message_id, field="id")
    if message.sender_id != viewer_id:
        raise Forbidden("only its sender can change a message", field="id")
    return message


async def _change(ctx: Context, message: StoredMessage, decide: Decide, *, field: str) -> StoredMessage:
    try:
        changed = await ctx.runtime.messages.changes.change(message.id, message.conversation_id, decide)
    except MessageKeptChanging:
        raise Conflict("the message kept changing meanwhile: try again", field=field) from None
    if changed is None:
        raise NotFound("message not found", field=field)
    return changed


def _refuse_deleted(message: StoredMessage, field: str) -> None:
    if message.deleted_at_ms is not None:
        raise Conflict("the message was deleted", field=field)


async def edit_message(ctx: Context, *, message_id: str, text: str) -> StoredMessage:
    """The sender's new text for their TEXT message (same rules as sending); UPDATED to every member."""
    viewer_id = ctx.require_viewer()
    await ctx.rate_limit("send_message", viewer_id)
    text = normalise_text(text)
    message = await _own_message(ctx, viewer_id, message_id)
    if message.kind != "TEXT":
        raise InvalidInput("only text messages can be edited", field="id")
    window = ctx.runtime.edit_window_seconds
    if window is not None and now_ms() - message.sent_at_ms > window * 1000:
        raise Forbidden(f"messages can be edited for {window:g} seconds after sending", field="id")

    def decide(current: StoredMessage) -> Change | None:
        _refuse_deleted(current, "id")
        if current.text == text:
            return None  # the same edit again
        return Change(dataclasses.replace(current, text=text, edited_at_ms=now_ms()))

    return await _change(ctx, message, decide, field="id")


async def delete_message(ctx: Context, *, message_id: str) -> StoredMessage:
    """The sender deletes their message for everyone: a tombstone, DELETED to every member. A
    voice message's recording goes first, so no answer of "deleted" leaves it playable; its
    transcript goes with the document (Redis, and so the search index, and MongoDB)."""
    viewer_id = ctx.require_viewer()
    await ctx.rate_limit("send_message", viewer_id)
    message = await _own_message(ctx, viewer_id, message_id)
    if message.deleted_at_ms is not None:
        return message  # deleting twice is not an error
    if message.audio is not None:
        await ctx.runtime.audio.delete_sent(audio_id=message.audio.id, message_id=message.id)
    at_ms = now_ms()

    def decide(current: StoredMessage) -> Change | None:
        if current.deleted_at_ms is not None:
            return None
        return Change(tombstone(current, at_ms), event="DELETED")

    return await _change(ctx, message, decide, field="id")


async def _reaction_of(ctx: Context, message_id: str, emoji: str) -> tuple[str, str, StoredMessage]:
    """(viewer, validated emoji, the message if the viewer may see it) for react and unreact."""
    viewer_id = ctx.require_viewer()
    await ctx.rate_limit("send_message", viewer_id)
    emoji = validate_emoji(emoji)
    return viewer_id, emoji, await _message(ctx, viewer_id, message_id, field="messageId")


async def react(ctx: Context, *, message_id: str, emoji: str) -> StoredMessage:
    """The viewer's reaction (one per user and emoji; again is a no-op); UPDATED to every member."""
    viewer_id, emoji, message = await _reaction_of(ctx, message_id, emoji)

    def decide(current: StoredMessage) -> Change | None:
        _refuse_deleted(current, "messageId")
        reactions = dict(current.reactions)
        users = reactions.get(emoji, ())
        if viewer_id in users:
            return None
        if emoji not in reactions and len(reactions) >= MAX_REACTIONS:
            raise InvalidInput(f"a message can have at most {MAX_REACTIONS} different emoji", field="emoji")
        reactions[emoji] = (*users, viewer_id)
        return Change(dataclasses.replace(current, reactions=tuple(reactions.items())))

    return await _change(ctx, message, decide, field="messageId")


async def unreact(ctx: Context, *, message_id: str, emoji: str) -> StoredMessage:
    """Take the viewer's reaction back (none: a no-op); UPDATED to every member."""
    viewer_id, emoji, message = await _reaction_of(ctx, message_id, emoji)

    def decide(current: StoredMessage) -> Change | None:
        users = dict(current.reactions).get(emoji, ())
        if viewer_id not in users:
            return None
        left = tuple(u for u in users if u != viewer_id)
        reactions = tuple((e, left if e == emoji else u) for e, u in current.reactions if e != emoji or left)
        return Change(dataclasses.replace(current, reactions=reactions))

    return await _change(ctx, message, decide, field="messageId")
