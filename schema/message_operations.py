"""A message's life after it was sent: edits, deletion for everyone, reactions.

The root Mutation type inherits these fields (schema.root)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from resolvers import lifecycle
from schema.messages import Message
from schema.users import ContextInfo

MESSAGE_ID = strawberry.argument(
    description="The message's ID (NOT_FOUND unless you are a member of its conversation)."
)
EMOJI = strawberry.argument(description="Exactly one emoji (a flag, keycap, skin tone or ZWJ sequence counts as one).")


@strawberry.type(description="Changes to sent messages.")
class MessageMutations:
    @strawberry.mutation(
        description="Edit the text of a TEXT message you sent (another member: FORBIDDEN; a voice message: "
        "BAD_USER_INPUT; a deleted one: CONFLICT). The text follows sendMessage's rules; `editedAt` is set and "
        "every member receives an UPDATED event. With EDIT_WINDOW_SECONDS set, only that long after sending "
        "(later: FORBIDDEN). Rate-limited like sendMessage."
    )
    async def edit_message(
        self, info: ContextInfo, id: Annotated[strawberry.ID, MESSAGE_ID],
        text: Annotated[str, strawberry.argument(description="The new text, 1-4,000 characters after trimming.")],
    ) -> Message:
        return Message.from_stored(await lifecycle.edit_message(info.context, message_id=id, text=text))

    @strawberry.mutation(
        description="Delete a message you sent, for everyone (another member: FORBIDDEN). It becomes a "
        "tombstone (`deletedAt` set, text \"\", no audio, transcript or reactions); a voice message's "
        "recording is deleted (its URL answers 404) and its transcript leaves history and search. Every "
        "member receives a DELETED event with the tombstone. Deleting again returns the tombstone. "
        "Rate-limited like sendMessage."
    )
    async def delete_message(self, info: ContextInfo, id: Annotated[strawberry.ID, MESSAGE_ID]) -> Message:
        return Message.from_stored(await lifecycle.delete_message(info.context, message_id=id))

    @strawberry.mutation(
        description="React to a message of one of your conversations with an emoji: one reaction per member "
        "and emoji, so reacting again changes nothing. At most 20 different emoji per message "
        "(BAD_USER_INPUT); a deleted message: CONFLICT. Every member receives an UPDATED event. "
        "Rate-limited like sendMessage."
    )
    async def react(
        self, info: ContextInfo, message_id: Annotated[strawberry.ID, MESSAGE_ID], emoji: Annotated[str, EMOJI],
    ) -> Message:
        return Message.from_stored(await lifecycle.react(info.context, message_id=message_id, emoji=emoji))

    @strawberry.mutation(
        description="Take your reaction with this emoji back (none: changes nothing). Every member receives "
        "an UPDATED event. Rate-limited like sendMessage."
    )
    async def unreact(
        self, info: ContextInfo, message_id: Annotated[strawberry.ID, MESSAGE_ID], emoji: Annotated[str, EMOJI],
    ) -> Message:
        return Message.from_stored(await lifecycle.unreact(info.context, message_id=message_id, emoji=emoji))
