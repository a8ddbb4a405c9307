"""The site plan in a real Chromium against a real hub (docs/console.md, "The
plan"): buildings drawn from the site file, a flat that flashes within a
second of a device's frame raising an alarm, layers that hide and show their
elements, a responder's marker that moves with its reports, dispatch that
suggests the nearest responder on duty and records whom it sent, and both
languages without a missing text.

With ANJU_SCREENSHOTS=<folder> the tests save the plan's screenshots there
(docs/img is where the documentation's are)."""
import os
import re
import time
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.console.consolekit import wait, wait_until
from tests.console.test_console_browser import log_in, row

pytestmark = pytest.mark.broker
SHOTS = os.environ.get("ANJU_SCREENSHOTS")
KEY_LIKE = re.compile(r"\b(?:plan|dispatch|responder|nav|detail|alarms|role|error)\.[a-z_.]+\b")


def open_plan(driver):
    driver.find_element(By.ID, "nav-plan").click()
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#plan-svg g.bld"),
         what="the plan's buildings")


def flat(driver, flat_id, cls="flat"):
    return driver.find_elements(By.CSS_SELECTOR, '#plan-svg .%s[data-flat="%s"]' % (cls, flat_id))


def shown(driver, css):
    """Whether each element matching `css` is rendered, read in one script (the
    plan is redrawn when alarms change, so element references would go stale)."""
    return driver.execute_script("""
        const drawn = (e) => {
          for (; e !== null; e = e.parentElement) {
            if (getComputedStyle(e).display === "none") return false;
          }
          return true;
        };
        return [...document.querySelectorAll(arguments[0])].map(drawn);""", "#plan-svg " + css)


def css_of(driver, css, prop):
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]);"
        "return e ? getComputedStyle(e).getPropertyValue(arguments[1]) : null;",
        "#plan-svg " + css, prop)


def open_building(driver, building):
    """Click a building on the plan; the plan is redrawn when an alarm or a
    device changes, so a reference found just before may be gone: find it again."""
    from selenium.common.exceptions import StaleElementReferenceException
    for _ in range(20):
        try:
            driver.find_element(By.CSS_SELECTOR,
                                '#plan-svg g.bld[data-building="%s"]' % building).click()
            return
        except StaleElementReferenceException:
            continue
    raise AssertionError("building %s kept being redrawn" % building)


def shot(driver, name):
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(SHOTS) / name))


def no_missing_texts(driver):
    text = driver.find_element(By.TAG_NAME, "body").text
    assert not KEY_LIKE.findall(text), KEY_LIKE.findall(text)


def test_the_plan_draws_the_site_files_buildings_in_both_languages(plan_console, driver):
    plan_console.account("officer", "police_liaison")
    log_in(driver, plan_console, "officer")
    open_plan(driver)
    shapes = {g.get_attribute("data-building"): g.find_element(By.CSS_SELECTOR, "polygon")
              for g in driver.find_elements(By.CSS_SELECTOR, "#plan-svg g.bld")}
    assert sorted(shapes) == ["b1", "b2"]
    assert shapes["b1"].get_attribute("points") == "60,80 380,80 380,320 60,320"
    assert shapes["b2"].get_attribute("points").split()[3] == "730,420"
    assert driver.find_element(By.ID, "plan-svg").get_dom_attribute("viewBox") == "0 0 1000 600"
    assert len(flat(driver, "b1-101")) == 1 and len(flat(driver, "b2-201")) == 1
    assert driver.find_element(By.ID, "plan-heading").text == "小区平面图"
    assert not driver.find_element(By.ID, "plan-auto").is_displayed()
    # a building opens to its floors and flats (with names: this role may see them)
    open_building(driver, "b1")
    wait(driver, lambda d: d.find_element(By.ID, "building-heading").text == "1号楼",
         what="the building's floors")
    floors = [h.text for h in driver.find_elements(By.CSS_SELECTOR, "#building-floors h3")]
    assert floors == ["2层", "1层"]
    b101 = driver.find_element(By.CSS_SELECTOR, '#building-floors li[data-flat="b1-101"]')
    assert "独居" in b101.text and "王兰" in b101.text
    assert "出租" in driver.find_element(By.CSS_SELECTOR,
                                       '#building-floors li[data-flat="b1-102"]').text
    no_missing_texts(driver)
    plan_console.report_position("p-zhang", 450, 360)
    plan_console.report_position("g-wu", 940, 500)
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#plan-svg g.responder")) == 2,
         what="the responders' markers")
    shot(driver, "console-plan.png")
    Select(driver.find_element(By.ID, "lang")).select_by_value("en")
    wait(driver, lambda d: d.find_element(By.ID, "plan-heading").text == "Site plan",
         what="English")
    assert driver.find_element(By.ID, "building-heading").text == "Building 1"
    assert "lives alone" in driver.find_element(
        By.CSS_SELECTOR, '#building-floors li[data-flat="b1-101"]').text
    assert driver.find_elements(By.CSS_SELECTOR, "#plan-svg g.bld")
    no_missing_texts(driver)
    shot(driver, "console-plan-en.png")


def test_a_device_alarm_from_a_frame_flashes_its_flat_within_a_second(plan_console, driver):
    plan_console.account("li-wei", "staff")
    log_in(driver, plan_console, "li-wei")
    open_plan(driver)
    assert flat(driver, "b1-101", "flat-alarm") == []
    plan_console.publish_tamper("door-101")
    wait_until(lambda: plan_console.alarms(), what="the hub to raise the alarm")
    (alarm,) = plan_console.alarms()
    raised_at = plan_console.transitions(alarm["id"])[0]["at"]
    wait(driver, lambda d: flat(d, "b1-101", "flat-alarm.is-raised"), what="the flat in alarm")
    shown_after = time.time() - raised_at
    assert shown_after < 1.0, "shown %.3f s after it was raised" % shown_after
    assert css_of(driver, '.flat-alarm[data-flat="b1-101"]', "animation-name") == "plan-flash"
    assert shown(driver, '.dev.st-alarm[data-device="door-101"]') == [True]
    assert shown(driver, 'g.bld[data-building="b1"] polygon.in-alarm') == [True]
    assert flat(driver, "b1-102", "flat-alarm") == []
    # it rings as in the list, and acknowledging stops the flashing and the sound
    body = driver.find_element(By.TAG_NAME, "body")
    assert body.get_attribute("data-sound") == "playing"
    shot(driver, "console-plan-alarm.png")
    driver.find_element(By.ID, "nav-alarms").click()
    row(driver, alarm["id"]).find_element(By.CSS_SELECTOR,
                                          'button[data-action="acknowledge"]').click()
    open_plan(driver)
    wait(driver, lambda d: flat(d, "b1-101", "flat-alarm")
         and not flat(d, "b1-101", "flat-alarm.is-raised"), what="the flashing to stop")
    assert body.get_attribute("data-sound") == "idle"


def test_layers_hide_and_show_their_elements(plan_console, driver):
    plan_console.account("wall", "read_only")
    log_in(driver, plan_console, "wall")
    open_plan(driver)
    plan_console.report_position("p-zhang", 450, 360)
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#plan-svg g.responder"),
         what="the responder's marker")
    layers = {"rental": ".l-rental", "alone": ".l-alone", "devices": ".l-devices",
              "responders": "g.responder"}
    for layer, css in layers.items():
        before = shown(driver, css)
        assert before and all(before), layer
        driver.find_element(By.ID, "layer-" + layer).click()
        assert shown(driver, css) == [False] * len(before), layer
        driver.find_element(By.ID, "layer-" + layer).click()
        assert shown(driver, css) == before, layer
    rentals = {e.get_attribute("data-flat") for e in driver.find_elements(By.CSS_SELECTOR,
                                                                        "#plan-svg .l-rental")}
    assert rentals == {"b1-102", "b2-101"}
    # the alarm layer too, once there is an alarm
    alarm = plan_console.raise_alarm("tamper:b2", flat="b2-101")
    wait(driver, lambda d: flat(d, "b2-101", "flat-alarm"), what="the alarm on the plan")
    assert shown(driver, '.flat-alarm[data-flat="b2-101"]') == [True]
    driver.find_element(By.ID, "layer-alarms").click()
    assert shown(driver, '.flat-alarm[data-flat="b2-101"]') == [False]
    driver.find_element(By.ID, "layer-alarms").click()
    assert shown(driver, '.flat-alarm[data-flat="b2-101"]') == [True]
    assert alarm["id"]
    # a read-only account sees no resident's name and has no upload form
    open_building(driver, "b1")
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#building-floors li"),
         what="the floors")
    assert "王兰" not in driver.find_element(By.ID, "building-floors").text
    assert not driver.find_element(By.ID, "plan-image-form").is_displayed()


def test_a_position_report_moves_the_responders_marker(plan_console, driver):
    plan_console.account("li-wei", "staff")
    log_in(driver, plan_console, "li-wei")
    open_plan(driver)
    plan_console.report_position("g-wu", 100, 500)
    marker = '#plan-svg g.responder[data-responder="g-wu"]'
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, marker), what="the marker")
    assert driver.find_element(By.CSS_SELECTOR, marker).get_attribute("transform") == \
        "translate(100,500)"
    assert "吴网格" in driver.execute_script("return document.querySelector(arguments[0])"
                                          ".textContent", marker)
    before = time.monotonic()
    plan_console.report_position("g-wu", 640, 520)
    wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, marker).get_attribute("transform")
         == "translate(640,520)", what="the marker to move")
    assert time.monotonic() - before < 1.0
    item = driver.find_element(By.CSS_SELECTOR, '#responder-list li[data-responder="g-wu"]')
    assert "网格员" in item.text


def test_dispatch_suggests_the_nearest_responder_and_records_whom_it_sent(plan_console, driver):
    plan_console.account("li-wei", "staff")
    log_in(driver, plan_console, "li-wei")
    # b1's centre is (220, 200); the volunteer is nearest but off duty
    plan_console.report_position("v-li", 225, 205)
    plan_console.report_position("p-zhang", 420, 200)   # 200 away
    plan_console.report_position("g-wu", 220, 330)      # 130 away
    alarm = plan_console.raise_alarm("tamper:door-101")
    wait(driver, lambda d: row(d, alarm["id"]) is not None, what="the alarm in the list")
    row(driver, alarm["id"]).find_element(By.CSS_SELECTOR, "button[data-details]").click()
    wait(driver, lambda d: d.find_element(By.ID, "dispatch-suggestion")
         .get_attribute("data-responder") == "g-wu", what="the suggestion")
    assert "吴网格" in driver.find_element(By.ID, "dispatch-suggestion").text
    assert "130" in driver.find_element(By.ID, "dispatch-suggestion").text
    select = Select(driver.find_element(By.ID, "detail-assignee"))
    assert select.first_selected_option.get_attribute("value") == "g-wu"
    assert [o.get_attribute("value") for o in select.options] == ["", "g-wu", "p-zhang"]
    # the police officer moves closer: the suggestion follows, live
    plan_console.report_position("p-zhang", 230, 210)
    wait(driver, lambda d: d.find_element(By.ID, "dispatch-suggestion")
         .get_attribute("data-responder") == "p-zhang", what="the new nearest")
    wait(driver, lambda d: Select(d.find_element(By.ID, "detail-assignee"))
         .first_selected_option.get_attribute("value") == "p-zhang", what="the new choice")
    shot(driver, "console-dispatch.png")
    driver.find_element(By.CSS_SELECTOR, '#detail-buttons button[data-action="dispatch"]').click()
    wait_until(lambda: plan_console.alarm(alarm["id"])["state"] == "dispatched",
               what="the dispatch")
    stored = plan_console.alarm(alarm["id"])
    assert stored["assignee"] == "p-zhang"
    assert (stored["history"][-1]["actor"], stored["history"][-1]["assignee"]) == \
        ("li-wei", "p-zhang")
    wait(driver, lambda d: "张警官" in d.find_element(By.ID, "detail-fields").text,
         what="whom it sent in the details")
    wait(driver, lambda d: "派遣给：张警官" in d.find_element(By.ID, "lifecycle-list").text,
         what="whom it sent in the lifecycle")
    shot(driver, "console-dispatched.png")
