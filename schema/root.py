"""Root operation types and the Schema. Each field calls one resolver and maps its result to a
schema type; descriptions live here."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Annotated

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ParserCache, SchemaExtension, ValidationCache
from strawberry.file_uploads import Upload
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from resolvers import auth, messages, subscriptions, users, voice
from resolvers import conversations as conversing
from resolvers import search as searching
from schema.conversation_operations import ConversationQueries, GroupMutations
from schema.conversations import Conversation, ConversationConnection, ConversationEvent
from schema.errors import translate_error
from schema.inputs import LoginInput, RegisterInput, SendMessageInput
from schema.message_operations import MessageMutations
from schema.messages import AudioFile, Message, MessageConnection, MessageEvent
from schema.reach import ReachMutations, ReachQueries
from schema.safety import SafetyMutations, SafetyQueries
from schema.scalars import SCALAR_MAP
from schema.search import SearchResults
from schema.users import AuthPayload, ContextInfo, PresenceEvent, User, UserConnection


@strawberry.type(
    description="Reads. Every field needs a valid token (`Authorization: Bearer <token>`), else UNAUTHENTICATED."
)
class Query(ConversationQueries, ReachQueries, SafetyQueries):
    @strawberry.field(description="The authenticated user.")
    async def me(self, info: ContextInfo) -> User:
        return User.from_view(await users.me(info.context))

    @strawberry.field(description="Every user in sign-up order, `first` at a time after the cursor `after`.")
    async def users(
        self,
        info: ContextInfo,
        online_only: Annotated[
            bool | None, strawberry.argument(description="Only users who are online now (null: false).")
        ] = False,
        first: Annotated[
            int | None,
            strawberry.argument(description="How many users, 0-200 (null: the default, 100)."),
        ] = users.DEFAULT_PAGE_SIZE,
        after: Annotated[
            str | None,
            strawberry.argument(
                description="Start after this cursor (`pageInfo.endCursor`); null: from the first user."
            ),
        ] = None,
    ) -> UserConnection:
        page = await users.list_users(info.context, online_only=bool(online_only), first=first, after=after)
        return UserConnection.from_page(page)

    @strawberry.field(
        description="Messages of a conversation you are a member of (`conversationId`), or of your "
        "DIRECT conversation with `partnerId` (empty if you never wrote); exactly one of the two. Oldest "
        "first within a page; page back with `before: pageInfo.startCursor`. Pages run seamlessly "
        "from the recent (Redis) window into the archive (MongoDB)."
    )
    async def history(
        self,
        info: ContextInfo,
        conversation_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="The conversation (NOT_FOUND unless you are a member)."),
        ] = None,
        partner_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="The other user of a DIRECT conversation (your own ID: notes to self)."),
        ] = None,
        last: Annotated[
            int | None,
            strawberry.argument(
                description="How many of the newest messages before `before`, 1-200 (null: the default, 50)."
            ),
        ] = messages.DEFAULT_HISTORY_PAGE,
        before: Annotated[
            str | None,
            strawberry.argument(
                description="Only messages older than this cursor (`pageInfo.startCursor`); null: the newest."
            ),
        ] = None,
    ) -> MessageConnection:
        page = await messages.history(info.context, conversation_id=conversation_id, partner_id=partner_id,
                                      last=last, before=before)
        return MessageConnection.from_page(page)

    @strawberry.field(
        description="Search usernames (prefix of the query's last word) and your own messages, "
        "typed text and voice transcripts (stemmed words, prefix on the last word). Only "
        "messages of conversations you are a member of now are searched and counted, and only those "
        "of the last 90 days (HOT_WINDOW_DAYS). Rate-limited per user (60 a minute by default; RATE_LIMITED)."
    )
    async def search(
        self,
        info: ContextInfo,
        query: Annotated[
            str,
            strawberry.argument(
                description="Free text, 1-256 characters after trimming; only its words (letters and "
                "digits, first 16) are searched, so no query syntax applies."
            ),
        ],
        first: Annotated[
            int | None,
            strawberry.argument(description="At most this many hits, 1-50 (null: the default, 20)."),
        ] = searching.DEFAULT_RESULTS,
        after: Annotated[
            str | None,
            strawberry.argument(
                description="Continue after this hit's cursor (`pageInfo.endCursor`); null: from the top."
            ),
        ] = None,
        conversation_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="Only messages of this conversation of yours (no user hits)."),
        ] = None,
        partner_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="Only messages of your DIRECT conversation with this user (no user hits)."),
        ] = None,
    ) -> SearchResults:
        outcome = await searching.search(info.context, query=query, first=first, after=after,
                                         conversation_id=conversation_id,
                                         partner_id=partner_id)
        return SearchResults.from_outcome(outcome)

    @strawberry.field(
        description="Your conversations, most recent activity first, with the last message and "
        "the unread count."
    )
    async def conversations(
        self,
        info: ContextInfo,
        first: Annotated[
            int | None,
            strawberry.argument(description="How many conversations, 0-100 (null: the default, 20)."),
        ] = conversing.DEFAULT_PAGE_SIZE,
        after: Annotated[
            str | None,
            strawberry.argument(description="Start after this cursor (`pageInfo.endCursor`); null: the most recent."),
        ] = None,
    ) -> ConversationConnection:
        page = await conversing.conversations(info.context, first=first, after=after)
        return ConversationConnection.from_page(page)

    @strawberry.field(
        description="One message of a conversation you are a member of (NOT_FOUND otherwise)."
    )
    async def message(
        self, info: ContextInfo, id: Annotated[strawberry.ID, strawberry.argument(description="The message's ID.")]
    ) -> Message | None:
        return Message.from_stored(await messages.message(info.context, message_id=id))


@strawberry.type(
    description="Changes; POST only. All but `register` and `login` need a valid token "
    "(`Authorization: Bearer <token>`)."
)
class Mutation(GroupMutations, MessageMutations, ReachMutations, SafetyMutations):
    @strawberry.mutation(
        description="Create an account and log in (no token needed). At most 20 sign-ups per hour "
        "per IP address by default (RATE_LIMITED); a taken username or email is CONFLICT."
    )
    async def register(
        self, info: ContextInfo, input: Annotated[RegisterInput, strawberry.argument(description="The new account.")]
    ) -> AuthPayload:
        session = await auth.register(
            info.context, username=input.username, email=input.email, password=input.password
        )
        return AuthPayload.from_session(session)

    @strawberry.mutation(
        description="Log in by username or email (no token needed). Unknown user and wrong password "
        "give the same UNAUTHENTICATED error. After 5 failures in 15 minutes for one login from one "
        "IP address, each further failure doubles the wait before the next attempt (1 s, 2 s, ... up "
        "to 15 minutes; RATE_LIMITED with retryAfter); a success resets it. Each IP address may also "
        "try at most 30 logins a minute, whatever the names (each aliased field counts; RATE_LIMITED)."
    )
    async def login(
        self, info: ContextInfo, input: Annotated[LoginInput, strawberry.argument(description="The credentials.")]
    ) -> AuthPayload:
        return AuthPayload.from_session(await auth.login(info.context, login=input.login, password=input.password))

    @strawberry.mutation(
        description="Send a message as the authenticated user. Returns once the message is "
        "durable; every member of the conversation receives a CREATED event. Rate-limited per user "
        "(120 a minute by default; RATE_LIMITED)."
    )
    async def send_message(
        self, info: ContextInfo, input: Annotated[SendMessageInput, strawberry.argument(description="The message.")]
    ) -> Message:
        message = await messages.send_message(
            info.context,
            conversation_id=input.conversation_id,
            receiver_id=input.receiver_id,
            text=input.text,
            audio_id=input.audio_id,
            client_id=input.client_id,
            reply_to_id=input.reply_to_id,
        )
        return Message.from_stored(message)

    @strawberry.mutation(
        description="Upload a voice recording (GraphQL multipart request). At most MAX_AUDIO_BYTES "
        "(10 MB) and MAX_AUDIO_SECONDS (300 s) by default; the content must decode as audio "
        "(webm/opus, ogg, mp3, wav, m4a, aac, flac), whatever its declared type. Send it once "
        "with sendMessage(input: {audioId}). Rate-limited per user (20 a minute by default; RATE_LIMITED)."
    )
    async def upload_audio(
        self,
        info: ContextInfo,
        file: Annotated[
            Upload,
            strawberry.argument(
                description="The recording, as a file part of the multipart request (too large: "
                "PAYLOAD_TOO_LARGE; not audio: UNSUPPORTED_MEDIA_TYPE)."
            ),
        ],
    ) -> AudioFile:
        return AudioFile.from_stored(await voice.upload_audio(info.context, upload=file))

    @strawberry.mutation(
        description="Move your read marker in a conversation (`conversationId`, or the DIRECT one with "
        "`partnerId`; exactly one) forward to the message `upTo` (never backward: a stale call changes "
        "nothing). The other members receive a READ event. Rate-limited per user (120 a minute by "
        "default; RATE_LIMITED)."
    )
    async def mark_read(
        self,
        info: ContextInfo,
        up_to: Annotated[
            strawberry.ID,
            strawberry.argument(description="The newest message you have read; it must be in this conversation."),
        ],
        conversation_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="The conversation (you must be a member).")
        ] = None,
        partner_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="The other user of a DIRECT conversation.")
        ] = None,
    ) -> Conversation:
        view = await conversing.mark_read(info.context, conversation_id=conversation_id, partner_id=partner_id,
                                          up_to=up_to)
        return Conversation.from_view(view)

    @strawberry.mutation(
        description="Tell the other members of a conversation (`conversationId`, or the DIRECT one with "
        "`partnerId`; exactly one) that you are (or stopped) typing; their events name you. Start notices "
        "are throttled to one per 2 s; typing stops by itself about 5 s after the last refresh. Never "
        "stored. Always returns true."
    )
    async def set_typing(
        self,
        info: ContextInfo,
        typing: Annotated[
            bool,
            strawberry.argument(description="True while typing (repeat every few seconds); false when you stop."),
        ],
        conversation_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="The conversation (you must be a member).")
        ] = None,
        partner_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="The other user of a DIRECT conversation.")
        ] = None,
    ) -> bool:
        return await conversing.set_typing(info.context, conversation_id=conversation_id, partner_id=partner_id,
                                           typing=typing)

    @strawberry.mutation(
        description="Queue a FAILED voice transcription again (members of its conversation only; any other "
        "status is CONFLICT). Returns the message, PENDING; an UPDATED event follows. "
        "Rate-limited per user (10 a minute by default; RATE_LIMITED)."
    )
    async def retry_transcription(
        self,
        info: ContextInfo,
        message_id: Annotated[strawberry.ID, strawberry.argument(description="The voice message's ID.")],
    ) -> Message:
        return Message.from_stored(await voice.retry_transcription(info.context, message_id=message_id))

    @strawberry.mutation(
        description="Log out: the token of this request stops working (UNAUTHENTICATED on HTTP; "
        "its open WebSockets close with 4403, on every instance). Your other tokens keep working. "
        "Always returns true."
    )
    async def logout(self, info: ContextInfo) -> bool:
        return await auth.logout(info.context)

    @strawberry.mutation(
        description="Log out everywhere: every token you hold stops working, this one included "
        "(UNAUTHENTICATED on HTTP; open WebSockets close with 4403). Log in again for a new token. "
        "Always returns true."
    )
    async def logout_everywhere(self, info: ContextInfo) -> bool:
        return await auth.logout_everywhere(info.context)

    @strawberry.mutation(
        description="Change your password. The current password is checked as `login` checks it "
        "(a wrong one is UNAUTHENTICATED, with the same attempt limits and back-off, RATE_LIMITED); "
        "the new one follows `register`'s rules (BAD_USER_INPUT). Returns a fresh token; every "
        "other token you hold, the one that made this call included, stops working."
    )
    async def change_password(
        self,
        info: ContextInfo,
        current_password: Annotated[str, strawberry.argument(description="Your password now.")],
        new_password: Annotated[str, strawberry.argument(description="The new password, 8-128 characters.")],
    ) -> AuthPayload:
        return AuthPayload.from_session(await auth.change_password(
            info.context, current_password=current_password, new_password=new_password
        ))


@strawberry.type(
    description="Live events over WebSocket (graphql-transport-ws or graphql-ws): send the token in "
    "connection_init; a bad, expired or revoked token closes the socket with 4403. A subscription may end "
    "with one error whose extensions.code is RESUBSCRIBE (extensions.reason CONNECTION_LOST: the server's "
    "Redis pub/sub connection dropped; SUBSCRIBER_TOO_SLOW: you fell 1,000 events behind): events may have "
    "been lost, so subscribe again, then refetch what you show (history, conversations, users)."
)
class Subscription:
    @strawberry.subscription(
        description="Every message of every conversation you are a member of: CREATED, then UPDATED "
        "when it changes (a voice transcript lands, an edit, a reaction) and DELETED when its sender deletes it "
        "(with the tombstone). After you leave a conversation, none of its events reach "
        "you. Ends with RESUBSCRIBE when events may have been lost (see Subscription)."
    )
    async def message_events(self, info: ContextInfo) -> AsyncGenerator[MessageEvent, None]:
        async for event in subscriptions.message_events(info.context):
            yield MessageEvent.from_stored(event)

    @strawberry.subscription(
        description="Events of your conversations caused by other members: READ receipts, "
        "TYPING_STARTED / TYPING_STOPPED, and MEMBER_ADDED / MEMBER_REMOVED / RENAMED in groups. Ends with "
        "RESUBSCRIBE when events may have been lost (see Subscription)."
    )
    async def conversation_events(self, info: ContextInfo) -> AsyncGenerator[ConversationEvent, None]:
        async for event in conversing.conversation_events(info.context):
            yield ConversationEvent.from_stored(event)

    @strawberry.subscription(
        description="Every user going online or offline (anyone signed in may watch). Ends with RESUBSCRIBE "
        "when events may have been lost (see Subscription)."
    )
    async def presence(self, info: ContextInfo) -> AsyncGenerator[PresenceEvent, None]:
        async for update in subscriptions.presence(info.context):
            yield PresenceEvent.from_update(update)


class ChattergramSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        operation = execution_context.operation_name if execution_context else None
        for error in errors:
            translate_error(error, operation)


def build_schema(
    extensions: Sequence[Callable[[], SchemaExtension]] = (), *, field_suggestions: bool = True
) -> ChattergramSchema:
    """The schema; `extensions` are added by the edge (logging, metrics, limits).
    Without `field_suggestions`, errors do not hint at field names ("Did you mean ...")."""
    return ChattergramSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(disable_field_suggestions=not field_suggestions, scalar_map=SCALAR_MAP),
        # Factories: a fresh extension per request; the caches themselves are shared.
        extensions=[lambda: ParserCache(maxsize=1024), lambda: ValidationCache(maxsize=1024), *extensions],
    )


schema = build_schema()
