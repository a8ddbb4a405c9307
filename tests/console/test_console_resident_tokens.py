"""Resident tokens on the visitors page in a real Chromium (docs/console.md,
"Visitors"; docs/visitors.md, "Resident tokens"): a clerk issues a token for
a flat, shown once in a read-only field, which then registers visits of that
flat only through the resident API; revoking the flat's tokens from the page,
after a confirmation, makes the API refuse it and says how many it ended. A
flat the hub refuses is named next to the field; a role without
`visitors.register` has no controls and the API refuses it; the token is in
no storage, URL or log; both languages have every text."""
import hashlib
import http.client
import json
import logging

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from tests.console.consolekit import wait
from tests.console.test_console_browser import log_in
from tests.console.test_console_plan import shot
from tests.console.test_console_registry import api_forced
from tests.console.test_console_visitors import GOOD_ID, KEY_LIKE, open_visitors
from tests.console.test_console_visitors import visitors_console  # noqa: F401 (the fixture)

pytestmark = pytest.mark.broker


def resident(hub, method, path, token, body=None):
    """A resident's call (no account, no browser): the token as its bearer."""
    headers = {"Authorization": "Bearer " + token}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn = http.client.HTTPConnection("127.0.0.1", hub.port, timeout=10)
    try:
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def a_visit(hub, flat):
    now = hub.call(hub.hub.clock.now)
    return {"flat": flat, "name": "张伟", "phone": "13812345678", "id_number": GOOD_ID,
            "purpose": "探亲", "valid_from": now + 600, "valid_until": now + 4 * 3600,
            "entry": "single", "entrances": ["gate-north"]}


def tokens_stored(hub):
    return hub.call(lambda: hub.hub.store.query(
        "SELECT token_hash, flat, created_by, revoked_at FROM visitor_tokens ORDER BY rowid"))


def open_tokens(driver):
    open_visitors(driver)
    wait(driver, lambda d: d.find_element(By.ID, "vis-tokens").is_displayed()
         and d.find_elements(By.CSS_SELECTOR, "#vis-tok-flat option"), what="the token section")


def active_id(driver):
    return driver.switch_to.active_element.get_attribute("id")


def shown(driver, element_id):
    return driver.find_element(By.ID, element_id).is_displayed()


def text(driver, element_id):
    return driver.find_element(By.ID, element_id).text


def issue(driver, flat):
    """Choose the flat and issue with the keyboard (Tab to the button, Enter)."""
    before = driver.find_element(By.ID, "vis-tok-token").get_attribute("value")
    select = driver.find_element(By.ID, "vis-tok-flat")
    Select(select).select_by_value(flat)
    select.send_keys(Keys.TAB)
    assert active_id(driver) == "vis-tok-issue"
    driver.switch_to.active_element.send_keys(Keys.ENTER)
    wait(driver, lambda d: shown(d, "vis-tok-issued") and d.find_element(
        By.ID, "vis-tok-token").get_attribute("value") not in ("", before), what="the token")
    return driver.find_element(By.ID, "vis-tok-token").get_attribute("value")


def revoke(driver):
    driver.find_element(By.ID, "vis-tok-revoke").click()
    wait(driver, lambda d: shown(d, "vis-tok-confirm"), what="the confirmation")
    assert active_id(driver) == "vis-tok-revoke-yes"
    driver.switch_to.active_element.send_keys(Keys.ENTER)
    wait(driver, lambda d: not shown(d, "vis-tok-confirm") and text(d, "vis-tok-result"),
         what="the revocation")
    return text(driver, "vis-tok-result")


def kept_by_the_browser(driver):
    """Everything the page could keep beyond its own memory: storage, URL, cookies."""
    return driver.execute_script(
        "return [JSON.stringify(localStorage), JSON.stringify(sessionStorage), location.href,"
        " document.cookie].join(' ');")


def test_a_clerk_issues_a_token_that_works_for_its_flat_only_and_revokes_it(
        visitors_console, driver, caplog):
    caplog.set_level(logging.DEBUG, logger="anju")
    hub = visitors_console
    hub.account("li-wei", "staff")
    log_in(driver, hub, "li-wei")
    open_tokens(driver)
    # the flats are the site's, as in the registration form
    assert [o.get_attribute("value") for o in
            driver.find_elements(By.CSS_SELECTOR, "#vis-tok-flat option")] == ["b1-101", "b1-102"]
    assert text(driver, "vis-tok-heading") == "住户访客登记授权码"
    assert not shown(driver, "vis-tok-issued") and not shown(driver, "vis-tok-confirm")
    token = issue(driver, "b1-101")
    assert token.startswith("avr_") and len(token) > 40
    box = driver.find_element(By.ID, "vis-tok-token")
    assert box.get_attribute("readonly") is not None
    assert active_id(driver) == "vis-tok-token"
    assert text(driver, "vis-tok-token-label") == "b1-101 的授权码"
    assert "只显示这一次" in text(driver, "vis-tok-once")
    assert "私下交给该户住户" in text(driver, "vis-tok-once")
    assert text(driver, "vis-tok-result") == "已为 b1-101 生成授权码。"
    shot(driver, "console-visitors-resident-token.png")
    # the hub keeps only the hash; the browser keeps the token nowhere but the field
    [(digest, flat, by, revoked)] = tokens_stored(hub)
    assert (digest, flat, by, revoked) == \
        (hashlib.sha256(token.encode()).hexdigest(), "b1-101", "http:li-wei", None)
    assert token not in kept_by_the_browser(driver)
    # the copy button puts it on the clipboard
    driver.execute_cdp_cmd("Browser.grantPermissions", {
        "origin": hub.base, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
    driver.find_element(By.ID, "vis-tok-copy").click()
    wait(driver, lambda d: text(d, "vis-tok-copied"), what="the copy")
    assert text(driver, "vis-tok-copied") == "已复制到剪贴板。"
    assert driver.execute_async_script(
        "navigator.clipboard.readText().then(arguments[0]);") == token
    # the token registers visits of its flat, and only of its flat
    status, visit = resident(hub, "POST", "/api/resident/visits", token, a_visit(hub, "b1-101"))
    assert (status, visit["flat"], visit["created_by"]) == (201, "b1-101", "resident:b1-101")
    status, err = resident(hub, "POST", "/api/resident/visits", token, a_visit(hub, "b1-102"))
    assert (status, err["error"]) == (403, "forbidden")
    # revoking asks first; Esc keeps the tokens
    driver.find_element(By.ID, "vis-tok-revoke").click()
    wait(driver, lambda d: shown(d, "vis-tok-confirm"), what="the confirmation")
    assert text(driver, "vis-tok-confirm-text").startswith("确定作废 b1-101 的全部授权码吗？")
    assert active_id(driver) == "vis-tok-revoke-yes"
    driver.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait(driver, lambda d: not shown(d, "vis-tok-confirm"), what="the confirmation gone")
    assert active_id(driver) == "vis-tok-revoke"
    assert resident(hub, "GET", "/api/resident/visits", token)[0] == 200
    # confirmed: the API refuses the token, the page says how many it ended and
    # takes the token off the page
    assert revoke(driver) == "已作废 b1-101 的授权码：1 个。"
    assert active_id(driver) == "vis-tok-revoke"
    assert not shown(driver, "vis-tok-issued")
    assert driver.find_element(By.ID, "vis-tok-token").get_attribute("value") == ""
    status, err = resident(hub, "POST", "/api/resident/visits", token, a_visit(hub, "b1-101"))
    assert (status, err["error"]) == (401, "unauthorized")
    assert tokens_stored(hub)[0][3] is not None
    # two new tokens, both revoked at once; a flat without valid tokens says so
    first = issue(driver, "b1-101")
    second = issue(driver, "b1-101")
    assert first != second
    assert revoke(driver) == "已作废 b1-101 的授权码：2 个。"
    assert all(resident(hub, "GET", "/api/resident/visits", t)[0] == 401 for t in (first, second))
    assert revoke(driver) == "b1-101 没有有效的授权码，未作废任何授权码。"
    # a token shown at logout is gone from the page
    kept = issue(driver, "b1-102")
    driver.find_element(By.ID, "nav-logout").click()
    wait(driver, lambda d: d.find_element(By.ID, "view-login").is_displayed(), what="the login")
    assert driver.find_element(By.ID, "vis-tok-token").get_attribute("value") == ""
    assert resident(hub, "GET", "/api/resident/visits", kept)[0] == 200
    # none of the tokens reached the hub's log, and none stayed in the browser
    hub_records = [r for r in caplog.records if r.name.startswith("anju")]
    for t in (token, first, second, kept):
        assert not [r for r in hub_records if t in r.getMessage() or t in str(vars(r))]
        assert t not in kept_by_the_browser(driver)
    assert [r.flat for r in hub_records if r.getMessage() == "resident token issued"] == \
        ["b1-101"] * 3 + ["b1-102"]


def test_a_flat_the_hub_refuses_is_named_next_to_the_field(visitors_console, driver):
    hub = visitors_console
    hub.account("li-wei", "staff")
    log_in(driver, hub, "li-wei")
    open_tokens(driver)
    # a flat taken out of the site after the page read it (as another clerk's
    # registry edit would): the hub's refusal is shown under the field
    driver.execute_script(
        "const o = document.createElement('option'); o.value = 'b9-909'; o.textContent = 'b9-909';"
        "document.getElementById('vis-tok-flat').appendChild(o);")
    Select(driver.find_element(By.ID, "vis-tok-flat")).select_by_value("b9-909")
    driver.find_element(By.ID, "vis-tok-issue").click()
    wait(driver, lambda d: shown(d, "vis-tok-err-flat"), what="the field's error")
    assert text(driver, "vis-tok-err-flat") == \
        "“房号”有误：no flat 'b9-909' in this site。未作任何更改。"
    select = driver.find_element(By.ID, "vis-tok-flat")
    assert select.get_attribute("aria-invalid") == "true"
    assert active_id(driver) == "vis-tok-flat"
    assert not shown(driver, "vis-tok-issued") and text(driver, "vis-tok-result") == ""
    assert tokens_stored(hub) == []
    # revoking that flat is refused the same way
    driver.find_element(By.ID, "vis-tok-revoke").click()
    wait(driver, lambda d: shown(d, "vis-tok-confirm"), what="the confirmation")
    assert not shown(driver, "vis-tok-err-flat")
    driver.find_element(By.ID, "vis-tok-revoke-yes").click()
    wait(driver, lambda d: shown(d, "vis-tok-err-flat"), what="the field's error")
    assert text(driver, "vis-tok-err-flat") == \
        "“房号”有误：no flat 'b9-909' in this site。未作任何更改。"
    assert not shown(driver, "vis-tok-confirm") and active_id(driver) == "vis-tok-flat"
    # another flat chosen: the mark goes, and the token is issued
    Select(select).select_by_value("b1-102")
    assert not shown(driver, "vis-tok-err-flat") and select.get_attribute("aria-invalid") is None
    token = issue(driver, "b1-102")
    assert [row[1] for row in tokens_stored(hub)] == ["b1-102"]
    assert resident(hub, "GET", "/api/resident/visits", token)[1]["flat"] == "b1-102"


def test_roles_without_the_permission_have_no_controls_and_the_api_refuses(
        visitors_console, driver):
    hub = visitors_console
    hub.account("officer", "police_liaison")
    hub.account("guard", "read_only")
    token = hub.call(hub.hub.visitors.book.resident_token, "b1-101", "cli")
    # the police liaison reads visits but has no token section
    log_in(driver, hub, "officer")
    open_visitors(driver)
    assert not shown(driver, "vis-tokens")
    assert not [e for e in driver.find_elements(By.CSS_SELECTOR, "[id^='vis-tok-']")
                if e.is_displayed()]
    for path in ("/api/visitors/resident-tokens", "/api/visitors/resident-tokens/revoke"):
        assert api_forced(driver, "officer", "POST", path, {"flat": "b1-101"}) == \
            [403, "forbidden"]
    # the section made visible by hand: the hub refuses, and the page says so
    log_in(driver, hub, "officer")
    open_visitors(driver)
    driver.execute_script("document.getElementById('vis-tokens').hidden = false;")
    driver.find_element(By.ID, "vis-tok-issue").click()
    wait(driver, lambda d: text(d, "vis-tok-result"), what="the refusal")
    assert text(driver, "vis-tok-result") == "未生成授权码：当前角色无权进行此操作。"
    assert not shown(driver, "vis-tok-issued")
    # the read-only account has no visitors page at all, and the API refuses it
    log_in(driver, hub, "guard")
    assert not shown(driver, "nav-visitors")
    for path in ("/api/visitors/resident-tokens", "/api/visitors/resident-tokens/revoke"):
        assert api_forced(driver, "guard", "POST", path, {"flat": "b1-101"}) == \
            [403, "forbidden"]
    # nothing changed: the one token there was still works, no other was made
    assert [(row[1], row[3]) for row in tokens_stored(hub)] == [("b1-101", None)]
    assert resident(hub, "GET", "/api/resident/visits", token)[0] == 200


def test_both_languages_every_text_at_tablet_width(visitors_console, driver):
    hub = visitors_console
    hub.account("li-wei", "staff")
    driver.set_window_size(768, 1000)
    log_in(driver, hub, "li-wei")
    open_tokens(driver)
    token = issue(driver, "b1-101")
    driver.find_element(By.ID, "vis-tok-copy").click()
    wait(driver, lambda d: text(d, "vis-tok-copied"), what="the copy")
    driver.find_element(By.ID, "vis-tok-revoke").click()
    wait(driver, lambda d: shown(d, "vis-tok-confirm"), what="the confirmation")
    for lang, heading, label in (("zh-CN", "住户访客登记授权码", "b1-101 的授权码"),
                                 ("en", "Resident tokens", "Token for b1-101")):
        Select(driver.find_element(By.ID, "lang")).select_by_value(lang)
        wait(driver, lambda d: text(d, "vis-tok-heading") == heading,
             what="the %s texts" % lang)
        section = text(driver, "vis-tokens")
        assert not KEY_LIKE.findall(section), KEY_LIKE.findall(section)
        assert text(driver, "vis-tok-token-label") == label
        assert "b1-101" in text(driver, "vis-tok-confirm-text")
        body = driver.find_element(By.TAG_NAME, "body").text
        assert not KEY_LIKE.findall(body), KEY_LIKE.findall(body)
        assert driver.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth;")
        # the token stays in its field through the change of language
        assert driver.find_element(By.ID, "vis-tok-token").get_attribute("value") == token
    assert "shown only this once" in text(driver, "vis-tok-once")
    assert text(driver, "vis-tok-confirm-text").startswith("Revoke every token of b1-101?")
    driver.find_element(By.ID, "vis-tok-revoke-yes").click()
    wait(driver, lambda d: text(d, "vis-tok-result") == "Tokens of b1-101 revoked: 1.",
         what="the revocation")
    assert text(driver, "vis-tok-result") == "Tokens of b1-101 revoked: 1."
    assert driver.find_element(By.ID, "vis-tok-revoke").text == "Revoke all of this flat's tokens"
    # "handed over" clears a shown token
    issue(driver, "b1-102")
    driver.find_element(By.ID, "vis-tok-done").click()
    wait(driver, lambda d: not shown(d, "vis-tok-issued"), what="the token cleared")
    assert driver.find_element(By.ID, "vis-tok-token").get_attribute("value") == ""
    assert active_id(driver) == "vis-tok-issue"
    Select(driver.find_element(By.ID, "lang")).select_by_value("zh-CN")
    wait(driver, lambda d: text(d, "vis-tok-heading") == "住户访客登记授权码", what="Chinese again")
