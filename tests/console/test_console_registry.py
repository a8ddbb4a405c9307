"""The registry pages in a real Chromium against a hub in registry mode
(docs/console.md, "Registry"; docs/registry.md): a refused change shows the
API's reason next to the field it names and changes nothing, a good one
reaches the running hub, a read-only account has no buttons and the API
refuses it, CSV goes in through the API, both languages have every text."""
import re

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from tests.console.consolekit import PASSWORD, wait, wait_until
from tests.console.test_console_browser import log_in
from tests.console.test_console_plan import shot
from tests.integration import hubkit

pytestmark = pytest.mark.broker
KEY_LIKE = re.compile(r"\b(?:reg|nav|error|plan)\.[a-z_.]+\b")


def open_registry(driver, tab="residents"):
    driver.find_element(By.ID, "nav-registry").click()
    driver.find_element(By.ID, "reg-tab-" + tab).click()
    wait(driver, lambda d: d.find_element(By.ID, "reg-tab-" + tab).get_attribute("aria-selected")
         == "true" and d.find_elements(By.CSS_SELECTOR, "#reg-list tr"), what="the %s" % tab)


def ids(driver):
    """The listed ids, read in one script (the list is redrawn after each change)."""
    return driver.execute_script(
        "return [...document.querySelectorAll('#reg-list tr')].map((r) => r.dataset.id);")


def fill(driver, field, value):
    box = driver.find_element(By.ID, "reg-in-" + field)
    if box.tag_name == "select":
        Select(box).select_by_value(value)
    elif box.get_attribute("type") == "date":
        # a date field takes what its locale's order lets it type; set it as the picker would
        driver.execute_script("arguments[0].value = arguments[1];"
                              "arguments[0].dispatchEvent(new Event('input'));", box, value)
    else:
        box.clear()
        box.send_keys(value)


def api_get(driver, path):
    """GET through the page's own session (the API, as the page sees it)."""
    return driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch(arguments[0], {credentials: 'same-origin'})
          .then(async (r) => done([r.status, await r.json()]));""", path)


def api_forced(driver, account, method, path, body):
    """A hand-made change from a fresh session of `account` (its own CSRF token)."""
    return driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        (async () => {
          const login = await fetch('/api/login', {method: 'POST',
            headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({account: arguments[0], password: arguments[1]})});
          const csrf = (await login.json()).csrf_token;
          const r = await fetch(arguments[3], {method: arguments[2],
            headers: {'Content-Type': 'application/json', 'X-CSRF-Token': csrf},
            body: arguments[4] === null ? undefined : JSON.stringify(arguments[4])});
          done([r.status, (await r.json()).error]);
        })();""", account, PASSWORD, method, path, body)


def visible_errors(driver):
    return {e.get_attribute("id")[len("reg-err-"):]: e.text
            for e in driver.find_elements(By.CSS_SELECTOR, "#reg-fields .field-error")
            if e.is_displayed()}


def test_a_bad_field_is_shown_next_to_it_and_changes_nothing(registry_console, driver):
    hub = registry_console
    hub.account("li-wei", "staff")
    log_in(driver, hub, "li-wei")
    open_registry(driver)
    before = api_get(driver, "/api/registry/residents")
    assert before[0] == 200
    version = hub.call(hub.registry.version)
    assert ids(driver) == [r["id"] for r in before[1]["residents"]]
    driver.find_element(By.ID, "reg-add").click()
    wait(driver, lambda d: d.find_element(By.ID, "reg-editor").is_displayed(), what="the form")
    assert driver.switch_to.active_element.get_attribute("id") == "reg-in-id"
    fill(driver, "id", "r-301")
    fill(driver, "flat", "b1-202")
    fill(driver, "name", "孙丽")
    fill(driver, "role", "tenant")
    fill(driver, "from", "2026-05-01")
    fill(driver, "until", "2026-01-31")   # before "from": the hub's validator refuses it
    driver.find_element(By.ID, "reg-save").click()
    wait(driver, lambda d: visible_errors(d), what="the field's error")
    errors = visible_errors(driver)
    assert list(errors) == ["until"]
    assert errors["until"].startswith("“登记截止日”有误") and "is before 'from'" in errors["until"]
    assert driver.find_element(By.ID, "reg-in-until").get_attribute("aria-invalid") == "true"
    assert driver.switch_to.active_element.get_attribute("id") == "reg-in-until"
    assert not driver.find_element(By.ID, "reg-form-error").is_displayed()
    shot(driver, "console-registry-error.png")
    # nothing changed: the API lists the same residents, the registry's version is the same
    assert api_get(driver, "/api/registry/residents") == before
    assert hub.call(hub.registry.version) == version
    assert "r-301" not in hub.site_now().residents
    # corrected, it is saved, listed, and the running hub has her
    fill(driver, "until", "2026-12-31")
    driver.find_element(By.ID, "reg-save").click()
    wait(driver, lambda d: "r-301" in ids(d), what="the new resident in the list")
    assert not driver.find_element(By.ID, "reg-editor").is_displayed()
    status, one = api_get(driver, "/api/registry/residents/r-301")
    assert status == 200 and (one["flat"], one["role"], one["from"], one["until"]) == \
        ("b1-202", "tenant", "2026-05-01", "2026-12-31")
    assert hub.site_now().residents["r-301"].role == "tenant"
    row = driver.find_element(By.CSS_SELECTOR, '#reg-list tr[data-id="r-301"]')
    assert "租户" in row.text and "2026-05-01" in row.text
    # edit: the phone is added, the id cannot be changed
    row.find_element(By.CSS_SELECTOR, "button[data-edit]").click()
    wait(driver, lambda d: d.find_element(By.ID, "reg-in-name").get_attribute("value") == "孙丽",
         what="the resident in the form")
    assert not driver.find_element(By.ID, "reg-in-id").is_enabled()
    fill(driver, "phone", "13800000000")
    driver.find_element(By.ID, "reg-save").click()
    wait_until(lambda: api_get(driver, "/api/registry/residents/r-301")[1].get("phone")
               == "13800000000", what="the phone")
    # remove asks once more, then removes
    wait(driver, lambda d: not d.find_element(By.ID, "reg-editor").is_displayed(), what="saved")
    driver.find_element(By.CSS_SELECTOR, '#reg-list button[data-remove="r-301"]').click()
    assert "r-301" in ids(driver)
    button = driver.find_element(By.CSS_SELECTOR, '#reg-list button[data-remove="r-301"]')
    assert button.text == "确认删除"
    button.click()
    wait(driver, lambda d: "r-301" not in ids(d), what="the removal")
    assert api_get(driver, "/api/registry/residents/r-301")[0] == 404
    # a flat that still has residents is not removed: the hub's reason is shown
    open_registry(driver, "flats")
    for _ in range(2):
        driver.find_element(By.CSS_SELECTOR, '#reg-list button[data-remove="b1-101"]').click()
    wait(driver, lambda d: "still has residents" in d.find_element(By.ID, "reg-result").text,
         what="the refusal")
    assert "b1-101" in ids(driver)


def test_a_read_only_account_has_no_buttons_and_the_api_refuses(registry_console, driver):
    hub = registry_console
    hub.account("wall", "read_only")
    log_in(driver, hub, "wall")
    driver.find_element(By.ID, "nav-registry").click()
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#reg-list tr"), what="the list")
    # no personal data and no registry devices for this role: those tabs are not offered
    shown = [k for k in ("buildings", "flats", "residents", "devices")
             if driver.find_element(By.ID, "reg-tab-" + k).is_displayed()]
    assert shown == ["buildings", "flats"]
    for tab in shown:
        open_registry(driver, tab)
        assert not driver.find_element(By.ID, "reg-add").is_displayed()
        assert not driver.find_elements(By.CSS_SELECTOR, "#reg-list button")
        assert not driver.find_element(By.ID, "reg-csv").is_displayed()
    assert "王兰" not in driver.find_element(By.TAG_NAME, "body").text
    version = hub.call(hub.registry.version)
    assert api_forced(driver, "wall", "POST", "/api/registry/buildings", {"id": "b9"}) == \
        [403, "forbidden"]
    assert api_forced(driver, "wall", "DELETE", "/api/registry/flats/b1-202", None) == \
        [403, "forbidden"]
    assert api_forced(driver, "wall", "POST", "/api/registry/residents",
                      {"id": "r-9", "flat": "b1-202", "name": "X"}) == [403, "forbidden"]
    assert hub.call(hub.registry.version) == version


def test_every_tab_in_both_languages_and_the_devices_state(registry_console, driver):
    hub = registry_console
    hub.account("root", "admin")
    hubkit.publish_frame(hub.broker, "door-101", hubkit.door_frame(1))
    wait_until(lambda: hub.call(lambda: hub.hub.store.device_state("door-101")),
               what="the door sensor heard")
    log_in(driver, hub, "root")
    for lang, heading in (("zh-CN", "小区登记"), ("en", "Site registry")):
        Select(driver.find_element(By.ID, "lang")).select_by_value(lang)
        for tab in ("buildings", "flats", "residents", "devices"):
            open_registry(driver, tab)
            assert driver.find_element(By.ID, "registry-heading").text == heading
            driver.find_element(By.ID, "reg-add").click()
            wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#reg-fields label"),
                 what="the form")
            text = driver.find_element(By.TAG_NAME, "body").text
            assert not KEY_LIKE.findall(text), (lang, tab, KEY_LIKE.findall(text))
            driver.find_element(By.ID, "reg-cancel").click()
        if lang == "zh-CN":
            shot(driver, "console-registry-devices.png")
    # the devices' state: the one that reported is online with its last report
    rows = {r.get_attribute("data-id"): r for r in
            driver.find_elements(By.CSS_SELECTOR, "#reg-list tr")}
    assert sorted(rows) == ["door-101", "door-102", "smoke-211"]
    assert rows["door-101"].find_element(By.CSS_SELECTOR, ".c-status").text == "online"
    assert rows["door-101"].find_element(By.CSS_SELECTOR, ".c-last_seen").text != "never heard"
    assert rows["door-102"].find_element(By.CSS_SELECTOR, ".c-last_seen").text == "never heard"
    assert rows["door-101"].find_element(By.CSS_SELECTOR, ".c-keys").text == "frame_key"
    # the firmware each device reported (hub.ota); this hub runs no OTA, so none
    heads = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "#reg-head th")]
    assert "Firmware" in heads
    assert rows["door-101"].find_element(By.CSS_SELECTOR, ".c-firmware").text == ""
    # a tablet: nothing scrolls sideways, the form opens from the keyboard
    driver.set_window_size(768, 1000)
    for tab in ("buildings", "flats", "residents", "devices"):
        open_registry(driver, tab)
        assert driver.execute_script("return document.documentElement.scrollWidth <= "
                                     "document.documentElement.clientWidth;"), tab
    driver.find_element(By.ID, "reg-tab-devices").send_keys(Keys.ARROW_LEFT)
    wait(driver, lambda d: d.find_element(By.ID, "reg-tab-residents").get_attribute(
        "aria-selected") == "true", what="the arrow key to choose the tab")
    assert driver.switch_to.active_element.get_attribute("id") == "reg-tab-residents"
    driver.find_element(By.ID, "reg-add").send_keys(Keys.ENTER)
    wait(driver, lambda d: d.switch_to.active_element.get_attribute("id") == "reg-in-id",
         what="the form's first field")
    driver.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait(driver, lambda d: not d.find_element(By.ID, "reg-editor").is_displayed(),
         what="Esc to close the form")
    assert driver.switch_to.active_element.get_attribute("id") == "reg-add"


def test_csv_export_and_import_through_the_api(registry_console, driver, tmp_path):
    hub = registry_console
    hub.account("root", "admin")
    log_in(driver, hub, "root")
    open_registry(driver)
    # the export button fetches the API's CSV (hub/registry/csvfile.py) and saves it
    driver.find_element(By.ID, "reg-export-residents").click()
    wait(driver, lambda d: "residents.csv" in d.find_element(By.ID, "reg-csv-result").text,
         what="the export")
    status, exported = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch('/api/registry?format=csv&file=residents.csv', {credentials: 'same-origin'})
          .then(async (r) => done([r.status, await r.text()]));""")
    assert status == 200 and exported.splitlines()[0].startswith("building,flat")
    header = exported.splitlines()[0].split(",")
    extra = dict.fromkeys(header, "")
    extra.update({"building": "b2", "flat": "b2-201", "resident_id": "r-221", "name": "周平",
                  "role": "tenant", "registered_from": "2026-03-01"})
    path = tmp_path / "residents.csv"
    path.write_text(exported.rstrip("\n") + "\n" + ",".join(extra[c] for c in header) + "\n",
                    encoding="utf-8")
    driver.find_element(By.ID, "reg-import-file").send_keys(str(path))
    driver.find_element(By.ID, "reg-import-submit").click()
    wait(driver, lambda d: "r-221" in ids(d), what="the imported resident")
    assert "已导入 residents.csv" in driver.find_element(By.ID, "reg-csv-result").text
    assert hub.site_now().residents["r-221"].flat == "b2-201"
    # a bad file: the row and column the hub names are shown, nothing changes
    version = hub.call(hub.registry.version)
    path.write_text("building,flat,resident_id,name,role\nb2,b2-201,r-222,X,boss\n",
                    encoding="utf-8")
    driver.find_element(By.ID, "reg-import-file").send_keys(str(path))
    driver.find_element(By.ID, "reg-import-submit").click()
    wait(driver, lambda d: "row 2" in d.find_element(By.ID, "reg-csv-result").text,
         what="the import's refusal")
    assert hub.call(hub.registry.version) == version
