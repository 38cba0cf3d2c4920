"""Real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright's async API.

`pw` starts Playwright once per session; `browser` is a plain Chromium shared by the web
tests; `launch_browser(...)` starts another one with extra flags (a fake microphone playing
a WAV). `Artifacts` saves numbered screenshots under test-artifacts/web/, and every page a
test registers with it is also captured when the test fails.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, Playwright, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # The tests press "play" from a script, not with a user gesture.
    "--autoplay-policy=no-user-gesture-required",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"


def fake_microphone_args(wav: Path) -> list[str]:
    """Chromium's fake capture device playing `wav` once (`%noloop`), permission granted."""
    return [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}%noloop",
    ]


@pytest.fixture(scope="session")
async def pw() -> AsyncIterator[Playwright]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the web tests need Debian's chromium "
                    "(`make test-system-deps`, or `apt-get install chromium`)")
    async with async_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
async def launch_browser(pw: Playwright) -> AsyncIterator[Callable[..., Awaitable[Browser]]]:
    launched: list[Browser] = []

    async def launch(*extra_args: str) -> Browser:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=[*BROWSER_ARGS, *extra_args])
        launched.append(browser)
        return browser

    yield launch
    for browser in launched:
        if browser.is_connected():
            await browser.close()


@pytest.fixture(scope="session")
async def browser(launch_browser: Callable[..., Awaitable[Browser]]) -> Browser:
    return await launch_browser()


class Artifacts:
    """Screenshots named <test>-<nn>-<step>.png; pages to capture if the test fails."""

    def __init__(self, test_name: str) -> None:
        self.prefix = re.sub(r"[^A-Za-z0-9_-]+", "_", test_name).removeprefix("test_")
        self.count = 0
        self.pages: dict[str, Page] = {}
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for old in ARTIFACTS.glob(f"{self.prefix}-*.png"):
            old.unlink()

    def watch(self, name: str, page: Page) -> Page:
        self.pages[name] = page
        return page

    async def shot(self, page: Page, step: str, *, full_page: bool = False) -> Path:
        self.count += 1
        path = ARTIFACTS / f"{self.prefix}-{self.count:02d}-{step}.png"
        await page.screenshot(path=str(path), full_page=full_page, animations="disabled")
        return path


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


FAILED = pytest.StashKey[bool]()


@pytest.fixture
async def artifacts(request: pytest.FixtureRequest) -> AsyncIterator[Artifacts]:
    recorder = Artifacts(request.node.name)
    yield recorder
    if request.node.stash.get(FAILED, False):
        for name, page in recorder.pages.items():
            if not page.is_closed():
                with contextlib.suppress(Exception):  # best effort on the way out
                    await recorder.shot(page, f"FAILED-{name}", full_page=True)
