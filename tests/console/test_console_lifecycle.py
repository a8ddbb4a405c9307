"""An alarm's whole lifecycle from the console, as the police platform sees it,
and a console that outlives a restart of the hub (docs/console.md, "Live
alarms: the stream").

The upstream platform is a real MQTT 5 client on the upstream Mosquitto
(tests/integration/hubkit.Platform); the hub forwards every version of an
alarm there, and the platform must see each lifecycle step exactly once."""
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.console.consolekit import wait, wait_until
from tests.console.test_console_browser import log_in, row, wait_live
from tests.console.test_console_plan import open_plan
from tests.integration.hubkit import Platform

pytestmark = pytest.mark.broker
MARKER = '#plan-svg g.responder[data-responder="p-zhang"]'


def detail_button(driver, action):
    found = driver.find_elements(By.CSS_SELECTOR, '#detail-buttons button[data-action="%s"]'
                                 % action)
    return found[0] if found else None


def press(driver, action):
    wait(driver, lambda d: detail_button(d, action) is not None, what="the %s button" % action)
    detail_button(driver, action).click()


def delivered(hub):
    return hub.call(hub.hub.store.outbox_depth) == 0


def test_dispatch_acknowledge_resolve_from_the_page_reach_the_platform_once_each(
        plan_console, driver):
    platform = Platform(plan_console.upstream)
    try:
        plan_console.account("li-wei", "staff")
        log_in(driver, plan_console, "li-wei")
        plan_console.report_position("p-zhang", 420, 200)   # 200 from b1's centre
        plan_console.report_position("g-wu", 220, 330)      # 130: the nearest
        plan_console.publish_tamper("door-101")
        wait_until(lambda: plan_console.alarms(), what="the hub to raise the alarm")
        (alarm,) = plan_console.alarms()
        wait(driver, lambda d: row(d, alarm["id"]) is not None, what="the alarm in the list")
        row(driver, alarm["id"]).find_element(By.CSS_SELECTOR, "button[data-details]").click()
        # dispatch to the suggested (nearest) responder
        wait(driver, lambda d: d.find_element(By.ID, "dispatch-suggestion")
             .get_attribute("data-responder") == "g-wu", what="the suggestion")
        assert Select(driver.find_element(By.ID, "detail-assignee")) \
            .first_selected_option.get_attribute("value") == "g-wu"
        driver.find_element(By.ID, "detail-note").send_keys("吴网格 前往 1号楼")
        press(driver, "dispatch")
        wait_until(lambda: plan_console.alarm(alarm["id"])["state"] == "dispatched",
                   what="the dispatch")
        # the page offers only what moves the alarm forward: no dispatch any more
        wait(driver, lambda d: detail_button(d, "dispatch") is None
             and detail_button(d, "acknowledge") is not None, what="the buttons after dispatch")
        press(driver, "acknowledge")
        wait_until(lambda: plan_console.alarm(alarm["id"])["state"] == "acknowledged",
                   what="the acknowledgement")
        wait(driver, lambda d: detail_button(d, "acknowledge") is None, what="acknowledged")
        driver.find_element(By.ID, "detail-note").send_keys("门磁外壳已复位")
        press(driver, "resolve")
        wait_until(lambda: plan_console.alarm(alarm["id"])["state"] == "resolved",
                   what="the resolution")
        wait(driver, lambda d: row(d, alarm["id"]).get_attribute("data-state") == "resolved",
             what="resolved in the list")
        wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#lifecycle-list tr")) == 4,
             what="the whole lifecycle in the details")
        assert not driver.find_elements(By.CSS_SELECTOR, "#detail-buttons button")

        stored = plan_console.alarm(alarm["id"])
        assert [(t["state"], t["actor"]) for t in plan_console.transitions(alarm["id"])] == [
            ("raised", "rules"), ("dispatched", "li-wei"), ("acknowledged", "li-wei"),
            ("resolved", "li-wei")]
        assert stored["assignee"] == "g-wu"
        # the platform: every version once, in order, the last one the resolution
        expected = [(1, "raised"), (2, "dispatched"), (3, "acknowledged"), (4, "resolved")]
        wait_until(lambda: delivered(plan_console)
                   and platform.alarm_versions(alarm["id"]) == expected,
                   what="the platform to see the four steps")
        versions = [m for m in platform.on("alarms") if m["id"] == alarm["id"]]
        assert [m["seq"] for m in versions] == [1, 2, 3, 4]
        assert versions[1]["assignee"] == "g-wu"
        assert versions[1]["history"][-1]["note"] == "吴网格 前往 1号楼"
        assert versions[3]["history"][-1]["note"] == "门磁外壳已复位"
        assert {m["id"] for m in platform.on("alarms")} == {alarm["id"]}
    finally:
        platform.close()


def test_after_a_hub_restart_the_page_catches_up_without_a_reload(plan_console, driver):
    console = plan_console
    platform = Platform(console.upstream)
    try:
        console.account("li-wei", "staff")
        log_in(driver, console, "li-wei")
        open_plan(driver)
        console.report_position("p-zhang", 450, 360)
        wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, MARKER), what="the marker")
        driver.find_element(By.ID, "nav-alarms").click()
        before = console.raise_alarm("tamper:before")
        wait(driver, lambda d: row(d, before["id"]) is not None, what="the first alarm")
        wait_until(lambda: delivered(console), what="the first alarm upstream")
        driver.execute_script("window.sameDocument = 1;")
        console.stop_hub()
        wait(driver, lambda d: d.find_element(By.ID, "live-status").get_attribute("data-status")
             == "offline", what="the page to see the hub gone")
        # while the hub is down: a device's frame (the site broker keeps it for
        # the hub's persistent session) and the platform resolving the first alarm
        # (the upstream broker keeps the command for the hub)
        console.publish_tamper("door-102")
        platform.command(before["id"], "resolve", actor="police-desk-7", note="closed upstream")
        console.start_hub()
        # right after the start, before the page is back: an alarm from a rule
        after = console.raise_alarm("tamper:after", flat="b1-102")
        wait_until(lambda: len(console.alarms()) == 3, what="the frame sent while down")
        wait_until(lambda: console.alarm(before["id"])["state"] == "resolved",
                   what="the command sent while down")
        (down,) = [a for a in console.alarms() if a["id"] not in (before["id"], after["id"])]
        assert down["device"] == "door-102"
        wait(driver, lambda d: row(d, down["id"]) is not None, 10,
             what="the alarm from the frame sent while down")
        wait(driver, lambda d: row(d, after["id"]) is not None, what="the alarm raised at start")
        wait(driver, lambda d: row(d, before["id"]).get_attribute("data-state") == "resolved",
             what="the resolution sent while down")
        wait_live(driver)
        assert driver.execute_script("return window.sameDocument;") == 1  # no reload
        # the new hub knows no position (they are kept in memory): the old marker goes
        open_plan(driver)
        wait(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, MARKER),
             what="the stale marker to go")
        console.report_position("p-zhang", 500, 380)
        wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, MARKER), what="the new report")
        driver.find_element(By.ID, "nav-alarms").click()
        assert len(driver.find_elements(By.CSS_SELECTOR, "#alarm-list tr")) == 3
        # still logged in and may act: the session lives in the hub's database
        row(driver, down["id"]).find_element(By.CSS_SELECTOR,
                                             'button[data-action="acknowledge"]').click()
        wait_until(lambda: console.alarm(down["id"])["state"] == "acknowledged",
                   what="an acknowledgement after the restart")
        assert console.transitions(down["id"])[-1]["actor"] == "li-wei"
        wait(driver, lambda d: row(d, down["id"]).get_attribute("data-state") == "acknowledged",
             what="the acknowledgement in the list")
    finally:
        platform.close()
