"""A real browser as a fan's client: the system's Chromium, driven by Playwright.

Playwright's own browser download cannot reach its servers from machines like ours, so the suite runs the
Chromium the system provides (Debian: ``apt-get install chromium``, binary ``/usr/lib/chromium/chromium``,
which is run directly because Debian's wrapper script prints a spurious error). One Chromium serves the
whole run, launched by the first @browser scenario; every fan of every scenario gets a fresh browser context
(their own cookie jar), so nothing carries over between scenarios.

Everything here runs on the suite's I/O loop (``suite.run``), like the viewers and the CMS stub.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Any, cast

from ..clock import within

#: Where Chromium usually is, in the order tried (Debian's real binary first, then whatever is on PATH).
CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome")
#: As root in a container Chromium needs --no-sandbox; the rest keeps it quiet and small.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"]
INSTALL_HINT = ("install Debian's Chromium (apt-get install chromium) or pass -D chromium=/path/to/chrome; "
                "Playwright's own browser download is not used")


def find_chromium(configured: str | None) -> tuple[str | None, str]:
    """``(path, "")`` for a usable Chromium, or ``(None, why not)``. Cheap: nothing is launched."""
    try:
        import playwright  # noqa: F401  # only whether it is installed
    except ImportError:
        return None, "the playwright package is not installed (pip install -r requirements.txt)"
    candidates = (configured,) if configured else CANDIDATES
    for candidate in candidates:
        path = candidate if os.sep in candidate else shutil.which(candidate)
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path, ""
    looked = configured or ", ".join(CANDIDATES)
    return None, f"no Chromium found (looked for {looked}); {INSTALL_HINT}"


class Chromium:
    """The run's one browser, launched on first use and closed with the suite."""

    def __init__(self, executable: str | None) -> None:
        self.executable = executable
        self._playwright: Any = None
        self._browser: Any = None
        #: Seconds the launch took (driver + browser), for the run's summary.
        self.launch_seconds: float | None = None

    async def browser(self) -> Any:
        if self._browser is None:
            assert self.executable is not None, "no Chromium: the @browser scenarios should have been skipped"
            from playwright.async_api import async_playwright

            began = time.monotonic()
            self._playwright = await async_playwright().start()
            self._browser = await self._playwright.chromium.launch(executable_path=self.executable, args=ARGS)
            self.launch_seconds = time.monotonic() - began
        return self._browser

    async def close(self) -> None:
        if self._browser is not None:
            await self._browser.close()
            self._browser = None
        if self._playwright is not None:
            await self._playwright.stop()
            self._playwright = None


@dataclass
class FanBrowser:
    """One person's browser: its own context (cookie jar) and the page of the live map once opened."""

    name: str
    context: Any
    page: Any = None
    console: list[str] = field(default_factory=list)

    @classmethod
    async def open(cls, chromium: Chromium, name: str) -> FanBrowser:
        browser = await chromium.browser()
        return cls(name, await browser.new_context())

    async def sign_in(self, cookie_header: str, processor_url: str) -> None:
        """Hold the session cookie as Directus sets it: host-only for the Processor's host (``url`` rather than
        ``domain``), HttpOnly, SameSite=Lax, not Secure (the suite speaks plain ``ws://``)."""
        name, _, value = cookie_header.partition("=")
        await self.context.add_cookies([{"name": name, "value": value, "url": processor_url, "httpOnly": True,
                                         "sameSite": "Lax"}])

    async def visit(self, url: str) -> None:
        self.page = await self.context.new_page()
        self.page.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))
        self.page.on("pageerror", lambda error: self.console.append(f"page error: {error}"))
        await self.page.goto(url)

    async def wait_for_state(self, state: str, *, timeout: float) -> None:
        """Until the page shows ``state`` in ``#status``; on timeout fail with what the page showed."""
        from playwright.async_api import TimeoutError as PageTimeout

        try:
            await self.page.wait_for_function("state => window.liveMap && window.liveMap.state === state", arg=state,
                                              timeout=within(timeout) * 1000)
        except PageTimeout:
            raise AssertionError(f"{self.name}'s page did not show {state!r} within {timeout} s; "
                                 f"{await self.describe()}") from None

    async def wait_for_text(self, text: str, *, timeout: float) -> None:
        """Until ``#status`` reads ``text``, the words the fan sees; on timeout fail with what the page showed."""
        from playwright.async_api import TimeoutError as PageTimeout

        try:
            await self.page.wait_for_function("text => document.getElementById('status').textContent === text",
                                              arg=text, timeout=within(timeout) * 1000)
        except PageTimeout:
            raise AssertionError(f"{self.name}'s page did not say {text!r} within {timeout} s; "
                                 f"{await self.describe()}") from None

    async def wait_for_car(self, device_id: str, latitude: float, longitude: float, *, timeout: float,
                           label: str = "") -> None:
        script = """([device, lat, lon]) => {
            const item = document.querySelector(`#cars li[data-device="${device}"]`);
            return item !== null && Number(item.dataset.lat) === lat && Number(item.dataset.lon) === lon;
        }"""
        from playwright.async_api import TimeoutError as PageTimeout

        try:
            await self.page.wait_for_function(script, arg=[device_id, latitude, longitude],
                                              timeout=within(timeout) * 1000)
        except PageTimeout:
            raise AssertionError(f"{self.name}'s page did not show {label or device_id} at {latitude}, {longitude} "
                                 f"within {timeout} s; {await self.describe()}") from None

    async def cars(self) -> list[dict[str, str]]:
        cars = await self.page.eval_on_selector_all("#cars li", "items => items.map(i => ({...i.dataset}))")
        return cast("list[dict[str, str]]", cars)

    async def status_text(self) -> str:
        return cast(str, await self.page.inner_text("#status"))

    async def state(self) -> dict[str, Any]:
        return cast("dict[str, Any]", await self.page.evaluate("() => window.liveMap"))

    async def describe(self) -> str:
        """The page's state, cars and console, for failure reports."""
        if self.page is None:
            return "no page opened"
        try:
            return f"state {await self.state()}; cars {await self.cars()}; console {self.console[-20:]}"
        except Exception as exc:  # the page or browser is gone: that is the report
            return f"the page could not be read ({type(exc).__name__}: {exc}); console {self.console[-20:]}"

    async def close(self) -> None:
        await self.context.close()


@dataclass
class FanBrowsers:
    """A scenario's browsers, by person (in the world's state); each is closed by the scenario's clean-up."""

    by_person: dict[str, FanBrowser] = field(default_factory=dict)
