"""The console in a real Chromium against a real hub (docs/console.md): log in
through the page, alarms raised by the hub's real paths appear live, actions
change the hub's store with the account as actor, a read-only account can
change nothing, a dropped stream catches up, Chinese first."""
import datetime
import time
import zoneinfo

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from tests.console.consolekit import PASSWORD, TIMEZONE, wait, wait_until

pytestmark = pytest.mark.broker


def open_console(driver, hub):
    driver.get(hub.base + "/")
    wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1",
         what="the console to start")


def log_in(driver, hub, account, password=PASSWORD):
    open_console(driver, hub)
    driver.find_element(By.ID, "login-account").send_keys(account)
    driver.find_element(By.ID, "login-password").send_keys(password)
    driver.find_element(By.ID, "login-submit").click()
    wait_live(driver)


def wait_live(driver):
    wait(driver, lambda d: d.find_element(By.ID, "live-status").get_attribute("data-status")
         == "live", what="the live stream")


def row(driver, alarm_id):
    found = driver.find_elements(By.CSS_SELECTOR, '#alarm-list tr[data-alarm-id="%s"]' % alarm_id)
    return found[0] if found else None


def text(driver, element_id):
    return driver.find_element(By.ID, element_id).text


def test_an_alarm_from_a_real_frame_appears_within_a_second_and_is_acknowledged(console, driver):
    console.account("li-wei", "staff")
    log_in(driver, console, "li-wei")
    assert text(driver, "alarms-heading").startswith("实时报警")
    console.publish_tamper("door-101")
    wait_until(lambda: console.alarms(), what="the hub to raise the alarm")
    (alarm,) = console.alarms()
    raised_at = console.transitions(alarm["id"])[0]["at"]  # the hub's clock (wall time here)
    wait(driver, lambda d: row(d, alarm["id"]) is not None, what="the alarm in the list")
    shown_after = time.time() - raised_at
    assert shown_after < 1.0, "shown %.3f s after it was raised" % shown_after
    r = row(driver, alarm["id"])
    assert r.get_attribute("data-state") == "raised" and "is-raised" in r.get_attribute("class")
    assert r.find_element(By.CSS_SELECTOR, ".cell-type").text == "设备被拆"
    assert r.find_element(By.CSS_SELECTOR, ".cell-state").text == "新报警"
    assert "b1" in r.find_element(By.CSS_SELECTOR, ".cell-location").text
    # the login click unlocked audio; a raised alarm rings until acknowledged
    body = driver.find_element(By.TAG_NAME, "body")
    assert body.get_attribute("data-sound") == "playing"
    r.find_element(By.CSS_SELECTOR, 'button[data-action="acknowledge"]').click()
    wait_until(lambda: console.alarm(alarm["id"])["state"] == "acknowledged",
               what="the hub to store the acknowledgement")
    last = console.transitions(alarm["id"])[-1]
    assert (last["state"], last["actor"]) == ("acknowledged", "li-wei")
    wait(driver, lambda d: row(d, alarm["id"]).get_attribute("data-state") == "acknowledged",
         what="the new state in the list")
    assert body.get_attribute("data-sound") == "idle"
    assert not row(driver, alarm["id"]).find_elements(By.CSS_SELECTOR,
                                                      'button[data-action="acknowledge"]')
    # the details show the lifecycle from the API: who did what, when
    row(driver, alarm["id"]).find_element(By.CSS_SELECTOR, "button[data-details]").click()
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#lifecycle-list tr")) == 2,
         what="the lifecycle")
    steps = [[c.text for c in tr.find_elements(By.TAG_NAME, "td")]
             for tr in driver.find_elements(By.CSS_SELECTOR, "#lifecycle-list tr")]
    assert [(s[1], s[2]) for s in steps] == [("新报警", "rules"), ("已确认", "li-wei")]


def test_a_read_only_account_sees_alarms_and_changes_nothing(console, driver):
    console.account("wall", "read_only")
    log_in(driver, console, "wall")
    alarm = console.raise_alarm("inactivity:b1-101", {"id": "r-101", "name": "王兰"})
    wait(driver, lambda d: row(d, alarm["id"]) is not None, what="the alarm in the list")
    r = row(driver, alarm["id"])
    assert not r.find_elements(By.CSS_SELECTOR, "button[data-action]")
    assert "王兰" not in driver.find_element(By.ID, "alarm-list").text  # no residents.read
    r.find_element(By.CSS_SELECTOR, "button[data-details]").click()
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#lifecycle-list tr")) == 1,
         what="the lifecycle")
    assert not driver.find_elements(By.CSS_SELECTOR, "#detail-buttons button")
    assert not driver.find_element(By.ID, "detail-actions").is_displayed()
    # forced: the same browser logs in again by hand and posts an action with its token
    status = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        (async () => {
          const login = await fetch('/api/login', {method: 'POST',
            headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({account: 'wall', password: arguments[0]})});
          const csrf = (await login.json()).csrf_token;
          const act = await fetch('/api/alarms/' + arguments[1] + '/actions', {method: 'POST',
            headers: {'Content-Type': 'application/json', 'X-CSRF-Token': csrf},
            body: JSON.stringify({action: 'acknowledge'})});
          done([act.status, (await act.json()).error]);
        })();""", PASSWORD, alarm["id"])
    assert status == [403, "forbidden"]
    assert console.alarm(alarm["id"])["state"] == "raised"
    assert [t["state"] for t in console.transitions(alarm["id"])] == ["raised"]


def test_residents_and_times_for_a_role_that_may_see_them(console, driver):
    console.account("officer", "police_liaison")
    log_in(driver, console, "officer")
    alarm = console.raise_alarm("inactivity:b1-101", {"id": "r-101", "name": "王兰"})
    wait(driver, lambda d: row(d, alarm["id"]) is not None, what="the alarm in the list")
    r = row(driver, alarm["id"])
    assert r.find_element(By.CSS_SELECTOR, ".cell-resident").text == "王兰"
    assert r.find_element(By.CSS_SELECTOR, ".cell-type").text == "长时间无活动"
    # the raised time is shown in the site's time zone (Asia/Shanghai here, not UTC)
    raised = datetime.datetime.fromisoformat(alarm["raised_at"]).astimezone(
        zoneinfo.ZoneInfo(TIMEZONE))
    shown = r.find_element(By.CSS_SELECTOR, ".cell-time").text
    assert raised.strftime("%H:%M:%S") in shown and raised.strftime("%d") in shown, shown
    assert text(driver, "site-name") == "朝阳花园"


def test_a_dropped_stream_reconnects_and_brings_what_was_raised_meanwhile(console, driver):
    console.account("li-wei", "staff")
    log_in(driver, console, "li-wei")
    first = console.raise_alarm("tamper:first")
    wait(driver, lambda d: row(d, first["id"]) is not None, what="the first alarm")
    streams = console.hub.alarm_streams

    def drop_and_raise():
        streams.drop_all(abort=True)  # as a network failure would
        open_now = len(streams)
        from tests.console.consolekit import raise_on_loop
        return (open_now, raise_on_loop(console.hub, "tamper:second"),
                raise_on_loop(console.hub, "tamper:third"))
    open_now, second, third = console.call(drop_and_raise)
    assert open_now == 0  # both were raised while no stream was open
    wait(driver, lambda d: row(d, second["id"]) is not None and row(d, third["id"]) is not None,
         timeout=8, what="both alarms after the reconnect")
    wait_live(driver)
    assert console.call(len, streams) == 1
    assert len(driver.find_elements(By.CSS_SELECTOR, "#alarm-list tr")) == 3


def test_chinese_by_default_english_on_request_and_remembered(console, driver):
    open_console(driver, console)
    assert text(driver, "login-heading") == "登录"
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
    Select(driver.find_element(By.ID, "lang")).select_by_value("en")
    wait(driver, lambda d: text(d, "login-heading") == "Log in", what="English texts")
    assert driver.title == "anju · property office console"
    open_console(driver, console)  # a reload keeps the choice (this browser's storage)
    assert text(driver, "login-heading") == "Log in"
    console.account("li-wei", "staff")
    log_in(driver, console, "li-wei")
    alarm = console.raise_alarm("tamper:lang")
    wait(driver, lambda d: row(d, alarm["id"]) is not None, what="the alarm")
    assert row(driver, alarm["id"]).find_element(By.CSS_SELECTOR, ".cell-state").text == "Raised"
    Select(driver.find_element(By.ID, "lang")).select_by_value("zh-CN")
    wait(driver, lambda d: row(d, alarm["id"]).find_element(
        By.CSS_SELECTOR, ".cell-state").text == "新报警", what="Chinese again")


def test_keyboard_only_on_a_tablet_width(console, driver):
    console.account("li-wei", "staff")
    driver.set_window_size(768, 1024)
    open_console(driver, console)
    active = driver.switch_to.active_element
    assert active.get_attribute("id") == "login-account"  # focus starts in the form
    active.send_keys("li-wei", Keys.TAB)
    driver.switch_to.active_element.send_keys(PASSWORD, Keys.ENTER)
    wait_live(driver)
    alarm = console.raise_alarm("tamper:keys")
    wait(driver, lambda d: row(d, alarm["id"]) is not None, what="the alarm")
    assert driver.execute_script(
        "return document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    button = row(driver, alarm["id"]).find_element(By.CSS_SELECTOR,
                                                   'button[data-action="acknowledge"]')
    assert button.is_displayed()
    # Tab from the list's start reaches the button; Enter presses it
    for _ in range(20):
        if driver.switch_to.active_element == button:
            break
        driver.switch_to.active_element.send_keys(Keys.TAB)
    assert driver.switch_to.active_element == button
    button.send_keys(Keys.ENTER)
    wait_until(lambda: console.alarm(alarm["id"])["state"] == "acknowledged",
               what="the acknowledgement")


def test_password_change_and_logout_end_the_session(console, driver):
    console.account("li-wei", "staff")
    log_in(driver, console, "li-wei")
    driver.find_element(By.ID, "nav-password").click()
    driver.find_element(By.ID, "password-current").send_keys(PASSWORD)
    driver.find_element(By.ID, "password-new").send_keys("quiet-river-stone-19")
    driver.find_element(By.ID, "password-confirm").send_keys("quiet-river-stone-19")
    driver.find_element(By.ID, "password-submit").click()
    wait(driver, lambda d: d.find_element(By.ID, "view-login").is_displayed(), what="login again")
    assert text(driver, "login-error") == "密码已修改，请用新密码登录。"
    status = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch('/api/session').then((r) => done(r.status));""")
    assert status == 401  # the hub ended the session (the stream ends at its next heartbeat)
    log_in(driver, console, "li-wei", "quiet-river-stone-19")
    driver.find_element(By.ID, "nav-logout").click()
    wait(driver, lambda d: d.find_element(By.ID, "view-login").is_displayed(), what="logged out")
    assert text(driver, "login-error") == "已退出登录。"
    actions = {a["action"] for a in console.call(console.hub.accounts.audit, 20, "li-wei")}
    assert {"login", "password_changed", "POST logout"} <= actions, actions
