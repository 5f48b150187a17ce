"""Every page on a phone and a laptop, as a new user meets it: nothing scrolls sideways,
nothing breaks axe-core's accessibility rules, the header stays one calm row, and the
flows that used to mislead (a browser listed twice, a stale tab, cookies before
consent) behave. Screenshots of every page at both sizes go to test-artifacts/.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import BrowserContext, Page

from tests.e2e.conftest import DESKTOP, PASSWORD, PHONE, Demo, login, register, shot, username

NewContext = Callable[[], BrowserContext]

_axe = Axe()
#: WCAG 2.0/2.1 A and AA rules, and axe's best practices.
_AXE_OPTIONS = {
    "runOnly": {
        "type": "tag",
        "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"],
    },
    "resultTypes": ["violations"],
}
SIZES = {"phone": PHONE, "desktop": DESKTOP}


def _fits(page: Page) -> tuple[int, int]:
    width: int = page.evaluate("document.documentElement.scrollWidth")
    inner: int = page.evaluate("window.innerWidth")
    return width, inner


def _check(page: Page, name: str, size: str) -> None:
    """No sideways scroll, no axe violation; a screenshot for the artefacts."""
    width, inner = _fits(page)
    assert width <= inner, f"{name} scrolls sideways at {size}: {width} > {inner}"
    results = _axe.run(page, options=_AXE_OPTIONS)
    found = results.response["violations"]
    problems = [f"{v['id']}: {[n['target'] for n in v['nodes']][:3]}" for v in found]
    assert problems == [], f"{name} at {size}: {problems}"
    shot(page, f"{size}-{name}")


@pytest.mark.parametrize("size", SIZES)
def test_every_page_fits_and_passes_axe(demo: Demo, new_context: NewContext, size: str) -> None:
    """Each public and signed-in page, at 390x844 and 1280x800: scrollWidth <= innerWidth
    and no axe-core violation (labels, contrast, landmarks, names)."""
    viewport = SIZES[size]
    anon = new_context().new_page()
    anon.set_viewport_size(viewport)
    for path, name in (
        ("/", "landing"),
        ("/login", "login"),
        ("/register", "register"),
        ("/cookies", "cookies"),
        ("/logout", "logout-anonymous"),
        ("/no-such-page", "not-found"),
    ):
        anon.goto(demo.url + path)
        _check(anon, name, size)
    anon.goto(demo.url + "/dashboard")
    assert anon.get_by_test_id("sign-in-needed").inner_text() == "Please sign in to see that page."
    _check(anon, "login-needed", size)
    anon.goto(demo.url + "/register")
    anon.fill("input[name=username]", "x")
    anon.fill("input[name=password]", "short")
    anon.fill("input[name=confirm_password]", "other")
    anon.click("form.stack button[type=submit]")
    _check(anon, "register-errors", size)

    name = username("longusername")  # 13+ characters
    laptop, phone = new_context().new_page(), new_context().new_page()
    laptop.set_viewport_size(viewport)
    register(laptop, demo.url, name)
    login(phone, demo.url, name, remember=True)
    for path, page_name in (
        ("/dashboard", "dashboard"),
        ("/sessions", "devices"),
        ("/password", "password"),
        ("/cookies", "cookies-signed-in"),
        ("/logout", "logout"),
    ):
        laptop.goto(demo.url + path)
        _check(laptop, page_name, size)
    laptop.goto(demo.url + "/sessions")
    laptop.locator("[data-testid=devices] > li:not(.current)").get_by_text(
        "Sign out this device"
    ).first.click()
    _check(laptop, "devices-confirm", size)
    laptop.goto(demo.url + "/password")
    laptop.fill("input[name=current_password]", "not the password")
    laptop.fill("input[name=new_password]", "short")
    laptop.fill("input[name=confirm_password]", "different")
    laptop.click("form.stack button[type=submit]")
    _check(laptop, "password-errors", size)
    if size == "phone":
        laptop.goto(demo.url + "/dashboard")
        laptop.click("details.menu > summary")
        _check(laptop, "menu-open", size)


def test_the_header_is_one_row(demo: Demo, new_context: NewContext) -> None:
    """A long username is cut with an ellipsis at 1280 px (the header keeps its height),
    and on a phone the header is a brand and a Menu button, under 10% of the screen."""
    name = username("maximiliana.von-habsburg-lo")  # 29 + a counter: near the 32 cap
    page = new_context().new_page()
    page.set_viewport_size(DESKTOP)
    register(page, demo.url, name)
    assert page.get_by_test_id("username").inner_text() == name  # the text is all there
    tall = page.locator("header.top").bounding_box()
    assert tall is not None and tall["height"] <= 66, tall
    clipped = page.evaluate(
        "() => { const e = document.querySelector('[data-testid=username]');"
        " return e.scrollWidth > e.clientWidth && getComputedStyle(e).textOverflow }"
    )
    assert clipped == "ellipsis"
    page.set_viewport_size(PHONE)
    box = page.locator("header.top").bounding_box()
    assert box is not None and box["height"] < 0.10 * PHONE["height"], box
    assert page.locator("nav.wide").is_hidden()
    page.click("details.menu > summary")
    assert page.locator(".menu-panel").get_by_text("Your devices").is_visible()
    page.set_viewport_size({"width": 390, "height": 844})
    anon = new_context().new_page()
    anon.set_viewport_size(PHONE)
    anon.goto(demo.url + "/")
    box = anon.locator("header.top").bounding_box()
    assert box is not None and box["height"] < 0.10 * PHONE["height"], box


def test_keyboard_alone_signs_in(demo: Demo, new_context: NewContext) -> None:
    """Tab reaches every field of the sign-in form in order, focus is visible, and
    Enter submits it."""
    name = username("kay")
    register(new_context().new_page(), demo.url, name)
    page = new_context().new_page()
    page.goto(demo.url + "/login")
    # The username field has autofocus (applied once the page has rendered, which a
    # busy machine can delay past goto's return); Tab then walks the form.
    page.wait_for_function("document.activeElement && document.activeElement.name === 'username'")
    page.keyboard.type(name)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "password"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "remember_me"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Sign in"
    page.keyboard.press("Enter")
    page.wait_for_url(demo.url + "/dashboard")


def test_a_restored_browser_is_listed_once(demo: Demo, new_context: NewContext) -> None:
    """After a restart with "remember me" the same browser is one row, remembered until a
    date; signing it out from the other device ends it."""
    name = username("ruth")
    laptop = new_context().new_page()
    register(laptop, demo.url, name)
    before = new_context()
    login(before.new_page(), demo.url, name, remember=True)
    kept = [c for c in before.cookies() if c["expires"] > 0]
    restarted = new_context()
    restarted.add_cookies(kept)  # type: ignore[arg-type]
    page = restarted.new_page()
    page.goto(demo.url + "/sessions")
    rows = page.locator("[data-testid=devices] > li")
    assert rows.count() == 2  # the laptop, and this browser once
    assert "remembered until" in rows.first.inner_text()
    assert rows.first.get_by_test_id("this-device").count() == 1
    shot(page, "11-devices-remembered")
    laptop.goto(demo.url + "/sessions")
    other = laptop.locator("[data-testid=devices] > li:not(.current)")
    assert other.count() == 1
    other.get_by_text("Sign out this device").first.click()
    other.locator("input[name=password]").fill(PASSWORD)
    other.locator("button[type=submit]").click()
    assert laptop.locator("[data-testid=devices] > li").count() == 1
    page.goto(demo.url + "/dashboard")
    assert "/login" in page.url


def test_stale_tabs(demo: Demo, new_context: NewContext) -> None:
    """A sign-in form left open while signing in in another tab just goes on; a form of
    a session that ended in another tab says the page was out of date, with Reload."""
    name = username("tab")
    register(new_context().new_page(), demo.url, name)
    ctx = new_context()
    first, second = ctx.new_page(), ctx.new_page()
    second.goto(demo.url + "/login?next=/sessions")
    login(first, demo.url, name)
    second.fill("input[name=username]", name)
    second.fill("input[name=password]", PASSWORD)
    second.click("form.stack button[type=submit]")
    second.wait_for_url(demo.url + "/sessions")
    second.goto(demo.url + "/password")
    first.goto(demo.url + "/dashboard")
    first.locator("nav.wide").get_by_text("Sign out").click()
    first.wait_for_url(demo.url + "/?m=signed-out")
    login(first, demo.url, name)
    second.fill("input[name=current_password]", PASSWORD)
    second.fill("input[name=new_password]", "another fine passphrase")
    second.fill("input[name=confirm_password]", "another fine passphrase")
    with second.expect_response(demo.url + "/password") as answer:
        second.click("form.stack button[type=submit]")
    assert answer.value.status == 403
    assert second.locator("h1").inner_text() == "This page was out of date"
    assert "another tab" in second.locator("main").inner_text()
    shot(second, "12-stale-tab")
    second.get_by_role("link", name="Reload the page").click()
    second.wait_for_url(demo.url + "/password")
    assert second.locator("input[name=current_password]").is_visible()


def test_consent_banner_and_theme(demo: Demo, new_context: NewContext) -> None:
    """No cookie before a choice; Decline keeps only the strictly necessary consent
    record; Accept allows the theme cookie, which the cookie page lists as optional."""
    ctx = new_context()
    page = ctx.new_page()
    page.goto(demo.url + "/")
    assert page.get_by_test_id("consent-banner").is_visible()
    assert ctx.cookies() == []
    page.get_by_role("button", name="Decline").click()
    page.wait_for_url("**/?m=consent-necessary")
    assert [c["name"] for c in ctx.cookies()] == ["__Host-consent"]
    assert page.get_by_test_id("consent-banner").count() == 0
    assert page.locator("form.theme").count() == 0  # no theme without consent

    ctx2 = new_context()
    page = ctx2.new_page()
    page.goto(demo.url + "/cookies")
    page.get_by_test_id("consent-banner").get_by_role("button", name="Accept").click()
    page.wait_for_url("**/cookies?m=consent-all")
    page.locator("form.theme").get_by_role("button", name="Dark").click()
    page.wait_for_url("**/cookies?m=theme")
    assert sorted(c["name"] for c in ctx2.cookies()) == ["__Host-consent", "__Host-theme"]
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    listing = page.get_by_test_id("cookie-table").inner_text()
    assert "__Host-theme" in listing and "no, opt-in" in listing
    _check(page, "cookies-dark", "desktop")
    page.set_viewport_size(PHONE)
    _check(page, "cookies-dark", "phone")
    page.get_by_test_id("cookie-choice").get_by_role("button", name="Decline it").click()
    page.wait_for_url("**/cookies?m=consent-necessary")
    assert [c["name"] for c in ctx2.cookies()] == ["__Host-consent"]
    assert page.evaluate("document.documentElement.dataset.theme") is None
