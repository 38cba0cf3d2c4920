"""The group form's "Find people by name" box in headless Chromium: a search that failed (the
network dropped it) is asked again when the box changes, instead of being taken as answered."""

from __future__ import annotations

from playwright.async_api import Browser, Route, expect

from api.app_server import AppServer
from tests.utils.graphql import GraphQLClient, register, unique_name
from tests.web.conftest import Artifacts
from tests.web.test_web_client import LIVE, Problems, expect_live, log_in, new_page


async def test_a_failed_people_search_is_asked_again(
    app: AppServer, browser: Browser, gql: GraphQLClient, artifacts: Artifacts,
) -> None:
    problems = Problems()
    alice = await register(gql, unique_name("alice"))
    context, page = await new_page(browser, app, problems, artifacts, "alice")
    try:
        # The page's first "People" page must be answered before dave exists: answered after,
        # it would list him (ids are in time order), and no search would be needed to find him.
        async with page.expect_response(lambda r: b"query People" in (r.request.post_data_buffer or b"")):
            await log_in(page, alice.username)
        await expect_live(page)
        dave = await register(gql, unique_name("dave"))  # after the page loaded, never online: only a search finds him
        dropped: list[str] = []

        async def drop_first_search(route: Route) -> None:
            if b"FindPeople" in (route.request.post_data_buffer or b"") and not dropped:
                dropped.append(route.request.url)
                await route.abort()
            else:
                await route.continue_()

        await page.route("**/graphql", drop_first_search)
        await page.get_by_test_id("new-group").click()
        find = page.get_by_test_id("group-find")
        dave_box = page.get_by_role("checkbox", name=dave.username, exact=True)
        async with page.expect_event("requestfailed", timeout=LIVE):
            await find.fill(dave.username)
        assert len(dropped) == 1
        await expect(page.locator("#group-candidates")).to_contain_text("Nobody by that name.")
        await expect(dave_box).to_have_count(0)
        # The same name again: asked anew (it was never answered), and dave is listed.
        await find.fill("")
        await find.fill(dave.username)
        await expect(dave_box).to_be_visible(timeout=LIVE)
        problems.check()
    finally:
        await context.close()
