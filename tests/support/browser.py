"""The admin in a real browser (Playwright's sync API): signing in, running a list action,
reading what a page shows, and saving a full-page screenshot of it as a CI artifact."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from tests.support import ROOT

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Where CI keeps what the browser saw (the folder is made by the tests; git ignores it).
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
# The width the lists must fit without horizontal scrolling.
VIEWPORT = {"width": 1366, "height": 900}


def shot(page, name: str) -> Path:
    """A full-page screenshot of what the page shows now."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^a-z0-9-]+', '-', name.lower())}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page, email: str, password: str, *, screenshot: str = "") -> None:
    """Through the sign-in form, as a person does (its field says "Email"); lands on the
    admin index."""
    page.goto("/admin/")
    assert page.locator("label[for=id_username]").inner_text().strip() == "Email:"
    page.fill("#id_username", email)
    page.fill("#id_password", password)
    if screenshot:
        shot(page, screenshot)
    submit(page, "input[type=submit]")
    assert page.url.endswith("/admin/"), page.url


def submit(page, selector: str) -> None:
    """Press a button that posts a form, and wait for the page that answers."""
    with page.expect_navigation():
        page.click(selector)


def run_action(page, changelist: str, action: str, rows: list[str]) -> None:
    """On a changelist, tick the rows whose text contains each of `rows`, pick the action by
    its label, and press Go."""
    page.goto(changelist)
    for text in rows:
        page.locator("#result_list tbody tr", has_text=text).locator("input.action-select").check()
    page.select_option("select[name=action]", label=action)
    submit(page, "button[name=index]")


def fits_the_width(page) -> bool:
    """The page needs no horizontal scrolling at the viewport's width."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def messages(page) -> str:
    """The messages shown after a redirect, as one text."""
    found = page.locator("ul.messagelist li")
    return "\n".join(found.all_inner_texts())
