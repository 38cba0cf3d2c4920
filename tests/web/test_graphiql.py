"""GraphiQL at /graphql works offline: in real headless Chromium with every request to another
host refused, the page loads from the app alone, runs a query over HTTP and a subscription over
the WebSocket (graphql-transport-ws, token from the headers pane), under its own CSP."""

from __future__ import annotations

import hashlib
import json
import re
from urllib.parse import urlsplit

from playwright.async_api import Browser, Page, Request, Route, expect

from api.app_server import AppServer
from api.web import GRAPHIQL_DIR
from tests.utils.graphql import SEND, GraphQLClient, register
from tests.web.conftest import Artifacts

LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]"}
SUBSCRIPTION = "subscription Live { messageEvents { type message { text sender { username } } } }"


async def open_graphiql(browser: Browser, app: AppServer, artifacts: Artifacts, name: str, *, query: str,
                        token: str, outside: list[str], problems: list[str]) -> Page:
    context = await browser.new_context(viewport={"width": 1200, "height": 760})

    async def only_local(route: Route, request: Request) -> None:
        if urlsplit(request.url).hostname in LOCAL_HOSTS or request.url.startswith("data:"):
            await route.continue_()
        else:
            outside.append(request.url)
            await route.abort()

    await context.route("**/*", only_local)
    # The editors as a user would have filled them in (GraphiQL keeps them in localStorage).
    headers = json.dumps({"Authorization": f"Bearer {token}"})
    await context.add_init_script(f"localStorage.setItem('graphiql:query', {json.dumps(query)});"
                                  f"localStorage.setItem('graphiql:headers', {json.dumps(headers)});")
    page = artifacts.watch(name, await context.new_page())
    page.set_default_timeout(10_000)
    page.on("pageerror", lambda error: problems.append(f"uncaught {error}"))
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("request", lambda request: None if urlsplit(request.url).hostname in LOCAL_HOSTS
            or request.url.startswith("data:") else outside.append(request.url))
    page.on("websocket", lambda ws: None if urlsplit(ws.url).hostname in LOCAL_HOSTS else outside.append(ws.url))
    response = await page.goto(app.graphql_url, wait_until="load")
    assert response is not None and response.status == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "https:" not in csp and "http:" not in csp, csp
    return page


async def run(page: Page) -> None:
    await expect(page.locator(".graphiql-query-editor .CodeMirror")).to_be_visible()
    await page.locator(".graphiql-execute-button").click()


async def test_graphiql_runs_a_query_and_a_subscription_offline(
    browser: Browser, app: AppServer, gql: GraphQLClient, artifacts: Artifacts
) -> None:
    alice, bob = await register(gql), await register(gql)
    outside: list[str] = []
    problems: list[str] = []

    page = await open_graphiql(browser, app, artifacts, "query", query="query Me { me { username } }",
                               token=alice.token, outside=outside, problems=problems)
    await run(page)
    result = page.locator(".result-window")
    await expect(result).to_contain_text(f'"username": "{alice.username}"')
    await artifacts.shot(page, "query-result")
    await page.context.close()

    page = await open_graphiql(browser, app, artifacts, "subscription", query=SUBSCRIPTION,
                               token=alice.token, outside=outside, problems=problems)
    sent: list[dict] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(json.loads(payload))))
    async with page.expect_websocket() as opened:
        await run(page)
    socket = await opened.value
    assert urlsplit(socket.url).path == "/graphql"
    await expect(page.locator(".graphiql-execute-button")).to_have_attribute("aria-label", re.compile(r"^Stop query"))
    # The subscription starts on the server a moment after the page sent it: send until one lands.
    result = page.locator(".result-window")
    for attempt in range(10):
        await gql.ok(SEND, {"input": {"receiverId": alice.id, "text": f"hello from bob {attempt}"}}, token=bob.token)
        try:
            await expect(result).to_contain_text("hello from bob", timeout=1_000)
            break
        except AssertionError:
            continue
    await expect(result).to_contain_text(f'"username": "{bob.username}"')
    await artifacts.shot(page, "subscription-event")
    # graphql-transport-ws (its `subscribe`; the legacy protocol says `start`), authenticated by
    # the headers pane in connection_init.
    types = [message["type"] for message in sent]
    assert types[:2] == ["connection_init", "subscribe"], types
    assert sent[0]["payload"] == {"Authorization": f"Bearer {alice.token}"}

    assert not outside, f"requests left the machine: {outside}"
    assert not problems, "\n".join(problems)
    await page.context.close()


def test_vendored_assets_match_their_recorded_checksums() -> None:
    """The committed copies are the npm files VENDORED.md names (`make graphiql-assets` compares
    them with the registry's packages themselves)."""
    rows = re.findall(r"^\| (\S+) \| \S+ \(MIT\) \| \S+ \| ([0-9a-f]{64}) \|$",
                      (GRAPHIQL_DIR / "VENDORED.md").read_text(), re.M)
    assert {name for name, _ in rows} == {"graphiql.min.js", "graphiql.min.css", "react.production.min.js",
                                          "react-dom.production.min.js"}
    for name, digest in rows:
        assert hashlib.sha256((GRAPHIQL_DIR / name).read_bytes()).hexdigest() == digest, name
    page = (GRAPHIQL_DIR / "index.html").read_text()
    assert "<script>" not in page and "http" not in page, "no inline script, nothing remote"
