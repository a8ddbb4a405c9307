"""The access log and a device's page in a real Chromium against a real hub
(docs/console.md, "Access log", "Device"): a smart lock's ACCESS and FORCED
frames through the site broker and the face entrances' decisions as the hub
records them, filtered by entrance, person and outcome; a device's state and
its newest frames; a role without the permission has no page and the API
refuses it."""
import time

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from anju import frame
from tests.console import consolekit
from tests.console.consolekit import PASSWORD, wait, wait_until
from tests.console.test_console_browser import log_in, row
from tests.console.test_console_plan import shot
from tests.integration import hubkit
from hub.verify import frames_lock as fl

pytestmark = pytest.mark.broker

LOCK_YAML = consolekit.SITE_YAML + (
    "  - {id: lock-101, kind: smart_lock, board: esp32c3, flat: b1-101, transport: mqtt,"
    " frame_key: %(key)s}\n")


@pytest.fixture
def lock_console(tmp_path, make_broker, driver):
    hub = consolekit.HubThread(tmp_path / "hub.db", make_broker("site"), make_broker("upstream"),
                               consolekit.site(LOCK_YAML))
    try:
        yield hub
    finally:
        driver.get("about:blank")
        hub.stop()


def lock_frame(hub, mtype, body):
    """A frame from the lock, signed with its key, through the site broker."""
    counter = hub.counters.get("lock-101", 0) + 1
    hub.counters["lock-101"] = counter
    data = frame.encode(hubkit.KEY, b"lock-101", mtype, counter, int(time.time()) - 946684800,
                        body)
    hubkit.publish_frame(hub.broker, "lock-101", data)


def face_event(hub, kind, **payload):
    """A face entrance's decision, recorded as the face service's sink does."""
    payload = {"site": "sunrise", "entrance": "b1-main", "time": time.time(), **payload}
    return hub.call(hub.hub.store.append_access, kind, payload["time"], payload)


def shown_rows(driver):
    return driver.execute_script("""
        return [...document.querySelectorAll('#access-list tr')].map((r) =>
          [r.dataset.source, r.querySelector('.a-where').textContent,
           r.querySelector('.a-person').textContent, r.dataset.outcome,
           r.querySelector('.a-reason').textContent]);""")


def test_the_access_log_shows_locks_and_faces_filtered(lock_console, driver):
    hub = lock_console
    hub.account("li-wei", "staff")
    lock_frame(hub, fl.T_ACCESS, fl.access_body("card", "unlocked", "card-0042", seq=1))
    lock_frame(hub, fl.T_ACCESS, fl.access_body("pin", "denied", "pin-7",
                                                reason="outside_schedule", user=4, seq=2))
    lock_frame(hub, fl.T_FORCED, fl.forced_body("opened_without_unlock"))
    wait_until(lambda: len(hub.call(hub.hub.store.events, "lock-101")) == 3,
               what="the lock's frames stored")
    face_event(hub, "face_access", person_id="r-101", name="王兰", score=0.71)
    face_event(hub, "face_access_denied", person_id="r-102", reason="outside_schedule")
    face_event(hub, "face_visitor_attempt", person_id=None, snapshot="2026-12-04/x.jpg")
    face_event(hub, "face_person_enrolled", person_id="r-101", list="resident")  # not access
    log_in(driver, hub, "li-wei")
    driver.find_element(By.ID, "nav-access").click()
    wait(driver, lambda d: len(shown_rows(d)) == 6, what="the six access entries")
    rows = shown_rows(driver)
    assert {(r[0], r[3]) for r in rows} == {
        ("lock", "allowed"), ("lock", "denied"), ("lock", "forced"),
        ("face", "allowed"), ("face", "denied"), ("face", "visitor")}
    assert ["lock", "b1-101", "card-0042", "allowed", ""] in rows
    assert ["lock", "b1-101", "pin-7", "denied", "不在允许时段"] in rows
    assert ["face", "b1-main", "王兰 (r-101)", "allowed", ""] in rows
    assert ["lock", "b1-101", "", "forced", "未解锁即开门"] in rows
    # filters: outcome, then entrance, then person
    Select(driver.find_element(By.ID, "access-outcome")).select_by_value("denied")
    wait(driver, lambda d: len(shown_rows(d)) == 2, what="the refusals")
    assert {r[0] for r in shown_rows(driver)} == {"lock", "face"}
    assert all(r[4] == "不在允许时段" for r in shown_rows(driver))
    Select(driver.find_element(By.ID, "access-outcome")).select_by_value("")
    Select(driver.find_element(By.ID, "access-where")).select_by_value("b1-main")
    wait(driver, lambda d: len(shown_rows(d)) == 3, what="the face entrance's entries")
    driver.find_element(By.ID, "access-person").send_keys("王兰")
    wait(driver, lambda d: len(shown_rows(d)) == 1, what="one person's entries")
    assert "显示 1 条，共 6 条" in driver.find_element(By.ID, "access-count").text
    shot(driver, "console-access.png")
    driver.find_element(By.ID, "access-person").clear()
    Select(driver.find_element(By.ID, "access-where")).select_by_value("b1-101")
    wait(driver, lambda d: len(shown_rows(d)) == 3, what="the lock's entries")
    # the lock's page: its newest frames
    driver.find_element(By.CSS_SELECTOR, "#access-list button.linkish").click()
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#device-events tr")) == 3,
         what="the lock's frames")
    assert driver.find_element(By.ID, "device-heading").text == "设备 lock-101"
    types = [r.find_elements(By.TAG_NAME, "td")[1].text
             for r in driver.find_elements(By.CSS_SELECTOR, "#device-events tr")]
    assert types == ["强行开门", "开门记录", "开门记录"]  # newest first
    driver.find_element(By.ID, "device-back").click()
    wait(driver, lambda d: d.find_element(By.ID, "view-access").is_displayed(), what="back")
    # English
    Select(driver.find_element(By.ID, "lang")).select_by_value("en")
    wait(driver, lambda d: d.find_element(By.ID, "access-heading").text == "Access log",
         what="English")
    assert "3 of 6 entries" in driver.find_element(By.ID, "access-count").text
    assert "outside its schedule" in driver.find_element(By.ID, "access-list").text


def test_without_the_access_log_permission_there_is_no_page_and_the_api_refuses(
        lock_console, driver):
    hub = lock_console
    hub.account("officer", "police_liaison")
    face_event(hub, "face_access", person_id="r-101", name="王兰")
    log_in(driver, hub, "officer")
    assert not driver.find_element(By.ID, "nav-access").is_displayed()
    status = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch('/api/access-log', {credentials: 'same-origin'}).then((r) => done(r.status));""")
    assert status == 403
    assert PASSWORD  # the session of the page itself was used


def test_a_devices_page_from_an_alarm_shows_its_state_and_frames(lock_console, driver):
    hub = lock_console
    hub.account("li-wei", "staff")
    log_in(driver, hub, "li-wei")
    hubkit.publish_frame(hub.broker, "door-101", hubkit.door_frame(1, is_open=True))
    hub.counters["door-101"] = 1
    hub.publish_tamper("door-101")
    wait_until(lambda: hub.alarms(), what="the tamper alarm")
    (alarm,) = hub.alarms()
    wait(driver, lambda d: row(d, alarm["id"]) is not None, what="the alarm")
    row(driver, alarm["id"]).find_element(By.CSS_SELECTOR, "button[data-details]").click()
    wait(driver, lambda d: d.find_elements(By.ID, "detail-device"), what="the device link")
    driver.find_element(By.ID, "detail-device").click()
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#device-events tr")) == 2,
         what="the device's frames")
    fields = driver.find_element(By.ID, "device-fields").text
    assert "门磁" in fields and "在线" in fields and "1 条未关闭" in fields
    assert "外壳被打开\n是" in fields and "门\n开" in fields
    types = [r.find_elements(By.TAG_NAME, "td")[1].text
             for r in driver.find_elements(By.CSS_SELECTOR, "#device-events tr")]
    assert types == ["防拆", "开关门"]
    shot(driver, "console-device.png")
    driver.find_element(By.ID, "device-back").click()
    wait(driver, lambda d: d.find_element(By.ID, "view-alarms").is_displayed(), what="back")
