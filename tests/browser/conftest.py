"""Headless Chromium (Debian's `chromium` package, driven by Playwright for Python) against
pytest-django's live server, with the app pointed at the CATS sandbox.

Playwright's own browser download is never used: the tests launch /usr/bin/chromium (or
$CHROMIUM). A missing browser fails the tests, so CI cannot pass by skipping them; a developer
without Chromium may set BROWSER_TESTS=optional to skip them instead.

Each test saves full-page screenshots of the pages it checks under artifacts/screenshots/.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, VIEWPORT
from tests.support.sandbox import SandboxHelper


@pytest.fixture(scope="module")
def chromium(django_db_setup) -> Iterator:
    """Chromium for one module's tests. Playwright's sync API keeps an event loop running in
    this thread while it is started, and Django refuses ORM calls from a thread with a running
    loop (it takes them for async code's); the tests' own calls (factories, drain()) are plain
    sync code, so the check is lifted while, and only while, the browser runs."""
    if not Path(CHROMIUM).exists():
        message = (
            f"Chromium is not installed ({CHROMIUM} not found): `apt-get install chromium`, "
            "or set BROWSER_TESTS=optional to skip the browser tests."
        )
        if os.environ.get("BROWSER_TESTS") == "optional":
            pytest.skip(message)
        pytest.fail(message, pytrace=False)
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()


@pytest.fixture
def sandbox(settings, cats_sandbox) -> SandboxHelper:
    """The app talks to the sandbox, and candidate links open the sandbox's candidate page."""
    settings.CATS_API_URL = cats_sandbox.url
    settings.CATS_CANDIDATE_URL = (
        f"{cats_sandbox.root}/_sandbox/ui/{{subdomain}}/candidates/{{candidate_id}}"
    )
    return cats_sandbox


@pytest.fixture
def browser(chromium, live_server) -> Iterator:
    """A fresh browser context (no cookies) on the live server."""
    context = chromium.new_context(base_url=live_server.url, viewport=VIEWPORT)
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def page(browser):
    return browser.new_page()
