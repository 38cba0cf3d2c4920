"""The runtime container: every store and service the use cases reach, built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network

from media.signing import MediaSigner
from resolvers.limits import RateLimits
from resolvers.passwords import PasswordHashing
from resolvers.sessions import LiveSessions
from resolvers.tokens import TokenService
from storage.audio import AudioStore
from storage.backlog import BacklogReader
from storage.blocks import BlockStore
from storage.conversation_lists import ConversationLists
from storage.conversations import ConversationStore
from storage.member_state import MemberStateStore
from storage.messages import MessageStore
from storage.mutes import MuteStore
from storage.presence import PresenceTracker
from storage.pubsub import PubSubHub
from storage.push import PushSubscriptionStore
from storage.ratelimit import RateLimiter
from storage.reports import ReportStore
from storage.revocations import RevocationStore
from storage.search import SearchIndex
from storage.users import UserStore

Network = IPv4Network | IPv6Network


@dataclass(frozen=True)
class PushConfig:
    """Web Push as the resolvers see it: off, or on with the application server's public key."""

    vapid_public_key: str | None = None  # None: push is off on this server
    allow_loopback_http: bool = False  # tests: a local push service at http://127.0.0.1


@dataclass(frozen=True)
class Runtime:
    users: UserStore
    messages: MessageStore
    search: SearchIndex
    conversations: ConversationStore
    member_state: MemberStateStore
    conversation_lists: ConversationLists
    audio: AudioStore
    presence: PresenceTracker
    hub: PubSubHub
    limiter: RateLimiter
    tokens: TokenService
    limits: RateLimits
    passwords: PasswordHashing
    media_signer: MediaSigner
    revocations: RevocationStore
    blocks: BlockStore
    reports: ReportStore
    sessions: LiveSessions  # this process's open WebSocket sessions, by user
    backlog: BacklogReader  # the outbox and transcription work waiting in Redis (for /metrics)
    mutes: MuteStore
    push_subscriptions: PushSubscriptionStore
    max_audio_bytes: int
    max_audio_seconds: float
    max_group_members: int = 256
    edit_window_seconds: float | None = None  # how long a sender may edit a message; None: no limit
    trusted_proxies: tuple[Network, ...] = ()  # peers whose X-Forwarded-For is believed
    push: PushConfig = PushConfig()
