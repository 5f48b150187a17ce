"""The reference app in a real browser (Debian's chromium) against a real server.

Each test drives the site as a person would: forms, buttons, several browser
contexts as several devices, and a hostile page on another origin.
"""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import BrowserContext

from tests.e2e.conftest import PASSWORD, Demo, Evil, login, register, shot, username

NewContext = Callable[[], BrowserContext]


def _cookie(ctx: BrowserContext, name: str) -> dict[str, object] | None:
    for c in ctx.cookies():
        if c["name"] == name:
            return dict(c)
    return None


def test_landing_and_forms_set_no_cookie(demo: Demo, new_context: NewContext) -> None:
    """Visiting the landing, sign-in, register and cookie pages leaves the jar empty."""
    ctx = new_context()
    page = ctx.new_page()
    page.goto(demo.url + "/")
    assert page.locator("h1").inner_text().startswith("Server-side sessions")
    shot(page, "01-landing")
    page.goto(demo.url + "/login")
    shot(page, "02-login")
    page.goto(demo.url + "/register")
    shot(page, "03-register")
    page.goto(demo.url + "/cookies")
    assert page.locator("[data-testid=cookie-table]").inner_text().count("__Host-") == 5
    shot(page, "04-cookies")
    page.goto(demo.url + "/login")
    page.fill("input[name=username]", "nobody")
    page.fill("input[name=password]", "wrong password")
    page.click("form.stack button[type=submit]")
    assert page.get_by_role("alert").inner_text() == "Wrong username or password."
    assert ctx.cookies() == []


def test_register_login_and_the_session_cookie_flags(demo: Demo, new_context: NewContext) -> None:
    """After registering, the browser holds a __Host-sid cookie that is HttpOnly, Secure,
    SameSite=Lax, Path=/ and dies with the browser; the dashboard shows the session."""
    ctx = new_context()
    page = ctx.new_page()
    name = username("ada")
    register(page, demo.url, name)
    cookie = _cookie(ctx, "__Host-sid")
    assert cookie is not None
    assert cookie["httpOnly"] is True
    assert cookie["secure"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["path"] == "/"
    assert cookie["expires"] == -1  # a browser-session cookie
    assert _cookie(ctx, "__Host-remember") is None
    assert page.get_by_test_id("username").inner_text() == name
    facts = page.get_by_test_id("session-facts").inner_text()
    assert "Created" in facts and "Idle expiry" in facts and "Ends at the latest" in facts
    assert "Welcome," in page.locator(".flash-ok").inner_text()
    shot(page, "05-dashboard")
    # Sign out, then in again: a new session id.
    first = cookie["value"]
    page.click("text=Sign out")
    page.wait_for_url(demo.url + "/?m=signed-out")
    login(page, demo.url, name)
    again = _cookie(ctx, "__Host-sid")
    assert again is not None and again["value"] != first


def test_remember_me_survives_a_browser_restart(demo: Demo, new_context: NewContext) -> None:
    """A new browser given only the persistent cookies is still signed in after
    "remember me", and is not after a plain sign-in."""
    name = username("bea")
    setup = new_context().new_page()
    register(setup, demo.url, name)

    remembered = new_context()
    login(remembered.new_page(), demo.url, name, remember=True)
    kept = [c for c in remembered.cookies() if c["expires"] > 0]
    # The remember-me cookie, and the login throttle's "known browser" cookie.
    assert sorted(c["name"] for c in kept) == ["__Host-device", "__Host-remember"]
    assert all(c["httpOnly"] and c["secure"] and c["sameSite"] == "Lax" for c in kept)
    restarted = new_context()
    restarted.add_cookies(kept)  # type: ignore[arg-type]
    page = restarted.new_page()
    page.goto(demo.url + "/dashboard")
    assert page.url == demo.url + "/dashboard"
    assert page.get_by_test_id("username").inner_text() == name
    assert "remember-me cookie" in page.get_by_test_id("session-facts").inner_text()
    shot(page, "06-dashboard-remembered")
    page.goto(demo.url + "/password")
    assert "confirm" in page.locator(".flash-warn").inner_text()

    plain = new_context()
    login(plain.new_page(), demo.url, name)
    kept_plain = [c["name"] for c in plain.cookies() if c["expires"] > 0]
    assert kept_plain == ["__Host-device"]  # it signs nobody in
    after = new_context().new_page()
    after.goto(demo.url + "/dashboard")
    assert after.url == demo.url + "/login?next=/dashboard"


def test_logout(demo: Demo, new_context: NewContext) -> None:
    """Sign out clears the cookies, says so, and the dashboard asks to sign in again."""
    ctx = new_context()
    page = ctx.new_page()
    name = username("cy")
    register(page, demo.url, name)
    page.goto(demo.url + "/logout")
    assert page.locator("h1").inner_text() == "Sign out?"  # GET asks, signs nobody out
    page.goto(demo.url + "/dashboard")
    assert page.url == demo.url + "/dashboard"
    page.click("text=Sign out")
    page.wait_for_url(demo.url + "/?m=signed-out")
    assert page.locator(".flash-ok").inner_text() == "You have signed out."
    assert _cookie(ctx, "__Host-sid") is None
    page.goto(demo.url + "/dashboard")
    assert page.url == demo.url + "/login?next=/dashboard"


def test_revoking_the_other_device_signs_it_out(demo: Demo, new_context: NewContext) -> None:
    """From "your devices" one browser signs the other out (after the password)."""
    name = username("dee")
    laptop, phone = new_context().new_page(), new_context().new_page()
    register(laptop, demo.url, name)
    login(phone, demo.url, name)
    laptop.goto(demo.url + "/sessions")
    rows = laptop.locator("[data-testid=devices] > li")
    assert rows.count() == 2
    assert laptop.get_by_test_id("this-device").count() == 1
    assert rows.first.get_by_test_id("this-device").count() == 1  # pinned first
    assert laptop.locator("input[name=password]:visible").count() == 0  # asked per action
    shot(laptop, "07-devices")
    other = laptop.locator("[data-testid=devices] > li:not(.current)")
    seen = other.get_by_test_id("last-seen").inner_text()
    assert seen == "just now" or seen.endswith(" ago")
    assert other.get_by_test_id("last-seen").get_attribute("title")
    other.get_by_text("Sign out this device").first.click()
    other.locator("input[name=password]").fill("not my password")
    other.locator("button[type=submit]").click()
    assert "not right" in laptop.locator(".flash-error").inner_text()
    phone.goto(demo.url + "/dashboard")
    assert phone.url == demo.url + "/dashboard"  # still in
    other = laptop.locator("[data-testid=devices] > li:not(.current)")
    other.get_by_text("Sign out this device").first.click()
    other.locator("input[name=password]").fill(PASSWORD)
    other.locator("button[type=submit]").click()
    assert laptop.locator(".flash-ok").inner_text() == "That device is signed out."
    assert laptop.locator("[data-testid=devices] > li").count() == 1
    phone.goto(demo.url + "/dashboard")
    assert phone.url == demo.url + "/login?next=/dashboard&m=expired"
    assert "Please sign in again" in phone.locator(".flash-info").inner_text()


def test_password_change_signs_out_the_other_device(demo: Demo, new_context: NewContext) -> None:
    """Changing the password in one browser signs the other out; the new one works."""
    name = username("eve")
    laptop, phone = new_context().new_page(), new_context().new_page()
    register(laptop, demo.url, name)
    login(phone, demo.url, name)
    laptop.goto(demo.url + "/password")
    shot(laptop, "08-password")
    laptop.fill("input[name=current_password]", PASSWORD)
    laptop.fill("input[name=new_password]", "a brand new passphrase")
    laptop.fill("input[name=confirm_password]", "a brand new passphrase")
    laptop.click("form.stack button[type=submit]")
    laptop.wait_for_url(demo.url + "/dashboard")
    assert "1 other device signed out" in laptop.locator(".flash-ok").inner_text()
    phone.goto(demo.url + "/sessions")
    assert phone.url == demo.url + "/login?next=/sessions&m=expired"
    login(phone, demo.url, name, password="a brand new passphrase")


def test_cross_origin_form_post_is_refused(demo: Demo, evil: Evil, new_context: NewContext) -> None:
    """A page on another origin that auto-posts a logout form gets a 403 page; the user
    stays signed in."""
    ctx = new_context()
    page = ctx.new_page()
    register(page, demo.url, username("fay"))
    with page.expect_response(demo.url + "/logout") as posted:
        page.goto(evil.url)
    assert posted.value.status == 403
    page.wait_for_selector("text=This request was refused")
    assert "did not come from this site" in page.locator("main").inner_text()
    shot(page, "09-csrf-refused")
    page.goto(demo.url + "/dashboard")
    assert page.url == demo.url + "/dashboard"
    assert _cookie(ctx, "__Host-sid") is not None


def test_too_many_failed_logins_show_when_to_retry(demo: Demo, new_context: NewContext) -> None:
    """Once LOGIN_MAX_ATTEMPTS guesses were checked, the next is a 429 that says when to
    try again (and no password is checked for it)."""
    page = new_context().new_page()
    name = username("gus")
    statuses = []
    for _ in range(4):
        page.goto(demo.url + "/login")
        page.fill("input[name=username]", name)
        page.fill("input[name=password]", "wrong guess here")
        with page.expect_response(demo.url + "/login") as answer:
            page.click("form.stack button[type=submit]")
        statuses.append(answer.value.status)
    assert statuses == [401, 401, 401, 429]
    first = page.get_by_test_id("retry-after").inner_text()
    assert "try again in" in first
    shot(page, "10-too-many-attempts")
    # The wait counts down live (a script from the site itself; the CSP allows no other).
    page.wait_for_function(
        "t => document.querySelector('[data-testid=retry-after]').innerText !== t", arg=first
    )
    assert page.get_by_test_id("retry-after").inner_text() != first
