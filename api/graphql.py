"""The GraphQL endpoint: Strawberry's ASGI view with our context, logging and metrics."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, overload

import orjson
from cross_web import HTTPException
from graphql import ASTValidationRule
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter, SchemaExtension
from strawberry.http import GraphQLHTTPResponse, async_base_view
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from api.metrics import record_operation, record_subscription
from api.web import graphiql_page
from api.websocket import LegacyWSHandler, TransportWSHandler, open_session, refuse_revoked, track_revocable
from resolvers.context import Context
from resolvers.runtime import Runtime
from resolvers.tokens import bearer_token
from resolvers.users import make_user_loader

log = logging.getLogger("chattergram.request")

# Strawberry parses every request's Content-Type with the email package (about 3 % of a
# sendMessage's CPU, bench.profile); the few values clients send are parsed once each.
async_base_view.parse_content_type = functools.lru_cache(maxsize=256)(async_base_view.parse_content_type)

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_MAX_METRIC_NAMES = 256
_seen_names: set[str] = set()


def metric_operation_name(name: str | None) -> str:
    """Operation names are client-chosen: bound the label's cardinality."""
    if not name:
        return "anonymous"
    if not _NAME.match(name):
        return "invalid"
    if name not in _seen_names:
        if len(_seen_names) >= _MAX_METRIC_NAMES:
            return "other"
        _seen_names.add(name)
    return name


GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
"""The GraphQL-over-HTTP media type whose status codes tell request errors from results."""


def _quality(param_list: list[str]) -> float:
    for param in param_list:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def wants_graphql_response(accept: str | None) -> bool:
    """Whether the Accept header ranks application/graphql-response+json above application/json
    (equal quality: the one listed first). Wildcards and no header keep application/json."""
    ranks: dict[str, tuple[float, int]] = {}
    for index, item in enumerate((accept or "").split(",")):
        media, *params = item.split(";")
        media = media.strip().lower()
        if media in (GRAPHQL_RESPONSE_JSON, "application/json") and media not in ranks:
            ranks[media] = (_quality(params), -index)
    ours = ranks.get(GRAPHQL_RESPONSE_JSON)
    return ours is not None and ours[0] > 0 and ours > ranks.get("application/json", (0.0, 0))


def is_request_error(response: GraphQLHTTPResponse) -> bool:
    """Nothing was executed: no data, and no error has a field path (field errors always do)."""
    errors = response.get("errors") or []
    return response.get("data") is None and bool(errors) and \
        not any(isinstance(error, dict) and "path" in error for error in errors)


@dataclass(frozen=True, slots=True)
class QueryLimits:
    """Depth, alias and token limits of every operation. The validation rules are built once:
    the validation cache is keyed by them, so rules made per request would never hit it."""

    max_tokens: int
    validation_rules: tuple[type[ASTValidationRule], ...]

    @classmethod
    def build(cls, *, max_depth: int, max_aliases: int, max_tokens: int) -> QueryLimits:
        rules = (
            *QueryDepthLimiter(max_depth=max_depth).validation_rules,
            *MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules,
        )
        return cls(max_tokens=max_tokens, validation_rules=rules)


class OperationEdge(SchemaExtension):
    """Per operation, in one hook: applies the query limits, then logs and measures the operation
    (name, user, duration, outcome). Built fresh for each request."""

    def __init__(self, limits: QueryLimits) -> None:
        self.limits = limits

    def on_operation(self) -> Iterator[None]:
        ctx = self.execution_context
        ctx.parse_options["max_tokens"] = self.limits.max_tokens
        ctx.validation_rules = (*ctx.validation_rules, *self.limits.validation_rules)
        started = time.perf_counter()
        raised: BaseException | None = None
        try:
            yield
        except BaseException as exc:  # a query that does not parse, a subscription closed by its client
            raised = exc
            raise
        finally:  # counted whichever way it ends
            self._record(time.perf_counter() - started, raised)

    def _record(self, elapsed: float, raised: BaseException | None) -> None:
        ctx = self.execution_context
        errors = getattr(ctx.result, "errors", None) or ctx.pre_execution_errors or []
        codes = sorted({(e.extensions or {}).get("code", "ERROR") for e in errors})
        if not codes and raised is not None and not isinstance(raised, GeneratorExit | asyncio.CancelledError):
            codes = [type(raised).__name__]  # Strawberry turns it into the error response
        outcome = "ok" if not codes else ",".join(codes)
        try:
            operation_type: OperationType | None = ctx.operation_type
        except RuntimeError:  # no parsed document, or no operation of that name
            operation_type = None
        op_type = operation_type.value if operation_type else "unknown"
        name = metric_operation_name(ctx.operation_name)
        context = ctx.context
        viewer = context.viewer_id if isinstance(context, Context) else None
        if operation_type is OperationType.SUBSCRIPTION:  # a lifetime, not a latency
            record_subscription(name, "ok" if not codes else "error", elapsed)
        else:
            record_operation(name, op_type, "ok" if not codes else "error", elapsed)
        log.info(
            "graphql %s %s",
            op_type,
            ctx.operation_name or "anonymous",
            extra={
                "operation": ctx.operation_name,
                "type": op_type,
                "user": viewer,
                "duration_ms": round(elapsed * 1000, 2),
                "outcome": outcome,
            },
        )

    @classmethod
    def factory(cls, limits: QueryLimits) -> Callable[[], OperationEdge]:
        return functools.partial(cls, limits)


class ChattergramGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)  # its JSONDecodeError is json's: bad bodies still get a 400

    def encode_json(self, data: object) -> str:
        # str, not bytes: the WebSocket protocols need text frames.
        return orjson.dumps(data).decode()

    @overload
    async def run(self, request: Request, context: Context = UNSET, root_value: None = UNSET) -> Response: ...

    @overload
    async def run(self, request: WebSocket, context: Context = UNSET, root_value: None = UNSET) -> WebSocket: ...

    async def run(
        self, request: Request | WebSocket, context: Context = UNSET, root_value: None = UNSET
    ) -> Response | WebSocket:
        try:
            return await super().run(request, context, root_value)
        except HTTPException as exc:
            refused = exc.__cause__
            if isinstance(refused, InvalidOperationTypeError) and refused.operation_type is OperationType.MUTATION:
                # Only GET refuses mutations; the spec's answer is 405 naming the method that works.
                return PlainTextResponse(exc.reason, status_code=405, headers={"Allow": "POST"})
            raise
        finally:
            if isinstance(request, Request):
                await request.close()  # the view never closes the parsed form: uploads would wait for the GC

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        if wants_graphql_response(request.headers.get("accept")):
            sub_response.media_type = GRAPHQL_RESPONSE_JSON  # read back by create_response
        return sub_response

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        if sub_response.media_type != GRAPHQL_RESPONSE_JSON:
            return super().create_response(response_data, sub_response)  # application/json: always 200
        if isinstance(response_data, dict) and is_request_error(response_data):
            # The spec: a request error has no `data` entry and a 4xx status.
            response_data = response_data.copy()
            response_data.pop("data", None)
            sub_response.status_code = 400
        response = super().create_response(response_data, sub_response)
        response.headers["content-type"] = f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8"
        return response

    async def render_graphql_ide(self, request: Request) -> Response:
        # Strawberry's page loads GraphiQL from a CDN; ours is served by the app (api/graphiql/).
        return graphiql_page(request)

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        runtime: Runtime = request.state.runtime
        # On WebSocket the token comes later, in connection_init (see api.websocket).
        token = None if isinstance(request, WebSocket) else bearer_token(request.headers.get("authorization"))
        context = Context(
            runtime=runtime,
            request=request,
            response=response,
            token=token,
        )
        context.user_loader = make_user_loader(runtime, lambda: context.viewer_id)  # presence as the viewer sees it
        if context.claims is not None:
            await context.check_revocation()  # from the process's cache, or one Redis round-trip
        return context

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        await refuse_revoked(context)
        await open_session(context)
        track_revocable(context)
        return await super().on_ws_connect(context)  # the default: acknowledge, no payload


def graphql_app(
    schema: Any, *, graphiql: bool, init_timeout_seconds: float = 10, max_subscriptions_per_connection: int = 100,
    allowed_origins: Sequence[str] = (),
) -> ChattergramGraphQL:
    return ChattergramGraphQL(
        schema,
        graphql_ide="graphiql" if graphiql else None,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
        multipart_uploads_enabled=True,
        # A socket that never sends connection_init is closed with 4408.
        connection_init_wait_timeout=timedelta(seconds=init_timeout_seconds),
        max_subscriptions_per_connection=max_subscriptions_per_connection,
        # Cross-origin handshakes from these pages only; no Origin (not a browser) and the
        # page's own host always pass (Strawberry's CSWSH check).
        allowed_origins=allowed_origins,
    )
