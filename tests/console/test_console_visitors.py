"""The visitors page in a real Chromium against a hub with the visitor
service (docs/console.md, "Visitors"; docs/visitors.md): a registration the
hub refuses shows its reason next to the field the API names and stores
nothing; a good one is approved from the page and its pass shows the lock
codes with their windows and the QR code, which decodes to the pass's token;
a watch-list hit is marked and approved only with a note; a role without
`visitors.approve` has no buttons and the API refuses it; both languages
have every text."""
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import cv2
import numpy
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from tests.console import consolekit
from tests.console.consolekit import wait
from tests.console.test_console_browser import log_in
from tests.console.test_console_plan import shot
from tests.console.test_console_registry import api_forced, api_get

pytestmark = pytest.mark.broker

GOOD_ID = "11010519491231002X"
BAD_ID = "110105194912310021"      # the check character does not match
WATCHED_ID = "440301199001011234"
KEY_LIKE = re.compile(r"\b(?:vis|nav|error|reg|detail)\.[a-z_.]+\b")
LOCK_KEYS = (bytes(range(60, 92)), bytes(range(92, 124)))

VISITORS_YAML = consolekit.SITE_YAML + """
  - {id: lock-north, kind: smart_lock, board: esp32c3, entrance: gate-north, transport: mqtt, frame_key: %(lock1)s}
  - {id: lock-south, kind: smart_lock, board: esp32c3, entrance: gate-south, transport: mqtt, frame_key: %(lock2)s}
hub: {kek_file: "%(kek)s"}
visitors:
  retention_days: 30
  readers:
    - {id: gate-north-qr, kind: qr_reader, entrance: gate-north, key: "%(reader)s"}
"""


@pytest.fixture
def visitors_console(tmp_path, make_broker, driver):
    from hub.registry import kek
    kek.create(tmp_path / "kek")
    text = VISITORS_YAML.replace("%(lock1)s", LOCK_KEYS[0].hex()) \
        .replace("%(lock2)s", LOCK_KEYS[1].hex()).replace("%(kek)s", str(tmp_path / "kek")).replace("%(reader)s", "33" * 32)
    hub = consolekit.HubThread(tmp_path / "hub.db", make_broker("site"), make_broker("upstream"),
                               consolekit.site(text))
    driver.set_window_size(1280, 900)
    try:
        yield hub
    finally:
        driver.get("about:blank")
        hub.stop()


def open_visitors(driver):
    driver.find_element(By.ID, "nav-visitors").click()
    wait(driver, lambda d: d.find_element(By.ID, "vis-empty").is_displayed()
         or d.find_elements(By.CSS_SELECTOR, "#vis-list tr"), what="the visits")


def listed(driver):
    return driver.execute_script(
        "return [...document.querySelectorAll('#vis-list tr')].map((r) => "
        "[r.dataset.visit, r.dataset.state, r.classList.contains('is-flagged')]);")


def fill_form(driver, id_number, name="张伟", entrances=("gate-north", "gate-south")):
    driver.find_element(By.ID, "vis-new").click()
    wait(driver, lambda d: d.find_element(By.ID, "vis-form").is_displayed()
         and d.find_elements(By.CSS_SELECTOR, "#vis-in-flat option"), what="the form")
    assert driver.switch_to.active_element.get_attribute("id") == "vis-in-flat"
    Select(driver.find_element(By.ID, "vis-in-flat")).select_by_value("b1-102")
    for field, value in (("name", name), ("phone", "138 1234 5678"), ("id_number", id_number),
                         ("plate", "粤B12345"), ("purpose", "探亲")):
        box = driver.find_element(By.ID, "vis-in-" + field)
        box.clear()
        box.send_keys(value)
    for e in entrances:
        box = driver.find_element(By.ID, "vis-entrance-" + e)
        if not box.is_selected():
            box.click()


def field_errors(driver):
    return {e.get_attribute("id")[len("vis-err-"):]: e.text
            for e in driver.find_elements(By.CSS_SELECTOR, "#vis-form .field-error")
            if e.is_displayed()}


def visits(driver):
    status, doc = api_get(driver, "/api/visitors/visits")
    assert status == 200
    return doc["visits"]


def decode_qr(driver):
    """The QR image as the browser drew it, decoded by OpenCV's QR detector."""
    img = driver.find_element(By.ID, "vis-qr")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", img)
    png = img.screenshot_as_png
    image = cv2.imdecode(numpy.frombuffer(png, numpy.uint8), cv2.IMREAD_GRAYSCALE)
    image = cv2.copyMakeBorder(image, 20, 20, 20, 20, cv2.BORDER_CONSTANT, value=255)
    text, _, _ = cv2.QRCodeDetector().detectAndDecode(image)
    return text


def test_a_bad_id_number_is_shown_next_to_it_and_a_good_visit_gets_its_pass(
        visitors_console, driver):
    hub = visitors_console
    hub.account("li-wei", "staff")
    log_in(driver, hub, "li-wei")
    open_visitors(driver)
    assert visits(driver) == []
    # the entrances a visit may cover come from GET /api/site (the locks' here)
    # (no face access on this hub: the form asks for no photo)
    assert api_get(driver, "/api/site")[1]["visitors"] == {"entrances": ["gate-north",
                                                                          "gate-south"],
                                                            "photo": False}
    fill_form(driver, BAD_ID)
    assert not driver.find_element(By.ID, "vis-in-photo").is_displayed()
    driver.find_element(By.ID, "vis-submit").click()
    wait(driver, lambda d: field_errors(d), what="the field's error")
    errors = field_errors(driver)
    assert list(errors) == ["id_number"]
    assert errors["id_number"] == \
        "“身份证号码”有误：the check digit does not match (mistyped?)。未保存任何内容。"
    box = driver.find_element(By.ID, "vis-in-id_number")
    assert box.get_attribute("aria-invalid") == "true"
    assert driver.switch_to.active_element.get_attribute("id") == "vis-in-id_number"
    assert not driver.find_element(By.ID, "vis-form-error").is_displayed()
    shot(driver, "console-visitors-error.png")
    # nothing was stored: the API lists no visit, the store has none
    assert visits(driver) == []
    assert hub.call(lambda: hub.hub.store.query("SELECT COUNT(*) FROM visits"))[0][0] == 0
    # the window is entered in the site's zone (the form starts at the next quarter
    # hour, for four hours)
    assert driver.find_element(By.ID, "vis-zone").text == "时间按小区时区 Asia/Shanghai 填写。"
    typed = [driver.find_element(By.ID, "vis-in-" + f).get_attribute("value")
             for f in ("valid_from", "valid_until")]
    # corrected, the visit is registered, requested, and opened
    box.clear()
    box.send_keys(GOOD_ID)
    driver.find_element(By.ID, "vis-submit").click()
    wait(driver, lambda d: d.find_element(By.ID, "vis-detail").is_displayed(), what="the visit")
    [visit] = visits(driver)
    assert (visit["state"], visit["flat"], visit["id_number"], visit["name"]) == \
        ("requested", "b1-102", "110***********002X", "张*")
    assert visit["entrances"] == ["gate-north", "gate-south"] and visit["one_time"] is True
    assert listed(driver) == [[visit["id"], "requested", False]]
    fields = driver.find_element(By.ID, "vis-fields").text
    assert "110***********002X" in fields and GOOD_ID not in fields
    assert "待审批" in driver.find_element(By.CSS_SELECTOR, "#vis-list tr").text
    zone = ZoneInfo(consolekit.TIMEZONE)
    assert [datetime.fromtimestamp(visit[f], zone).strftime("%Y-%m-%dT%H:%M")
            for f in ("valid_from", "valid_until")] == typed
    assert visit["valid_until"] - visit["valid_from"] == 4 * 3600
    # approve from the page: the pass shows a code per lock and the QR code
    assert [b.get_attribute("data-action") for b in
            driver.find_elements(By.CSS_SELECTOR, "#vis-buttons button")] == \
        ["approve", "refuse", "revoke"]
    driver.find_element(By.ID, "vis-note").send_keys("业主来电确认")
    driver.find_element(By.CSS_SELECTOR, '#vis-buttons button[data-action="approve"]').click()
    wait(driver, lambda d: d.find_element(By.ID, "vis-pass").is_displayed()
         and d.execute_script("const i = document.getElementById('vis-qr');"
                              "return i.complete && i.naturalWidth > 0;"), what="the pass")
    status, pass_ = api_get(driver, "/api/visitors/visits/%s/pass" % visit["id"])
    assert status == 200 and len(pass_["codes"]) == 2
    rows = driver.find_elements(By.CSS_SELECTOR, "#vis-code-list tr")
    shown = {r.get_attribute("data-device"): r.find_element(By.CLASS_NAME, "code-digits").text
             for r in rows}
    assert shown == {c["device"]: c["digits"] for c in pass_["codes"]}
    assert all(re.fullmatch(r"\d{10}", d) for d in shown.values())
    assert "一次有效" in rows[0].text
    assert decode_qr(driver) == pass_["qr"]
    assert "道闸放行" in driver.find_element(By.ID, "vis-pass-fields").text
    assert listed(driver) == [[visit["id"], "approved", False]]
    driver.set_window_size(1280, 1400)
    driver.execute_script("window.scrollTo(0, 0);")
    shot(driver, "console-visitors-pass.png")
    driver.set_window_size(1280, 900)
    # the store has the approval with the account and the note
    stored = api_get(driver, "/api/visitors/visits/%s" % visit["id"])[1]
    assert (stored["state"], stored["decided_by"], stored["note"]) == \
        ("approved", "http:li-wei", "业主来电确认")
    # revoke: the pass goes at once, and so does the QR image's route
    driver.find_element(By.CSS_SELECTOR, '#vis-buttons button[data-action="revoke"]').click()
    wait(driver, lambda d: listed(d) == [[visit["id"], "revoked", False]], what="the revocation")
    assert not driver.find_element(By.ID, "vis-pass").is_displayed()
    assert api_get(driver, "/api/visitors/visits/%s/pass" % visit["id"])[0] == 409


def test_a_watch_list_hit_is_marked_and_approved_only_with_a_note(visitors_console, driver):
    hub = visitors_console
    hub.account("li-wei", "staff")
    hub.account("officer", "police_liaison")
    log_in(driver, hub, "officer")
    assert api_forced(driver, "officer", "POST", "/api/visitors/watch",
                      {"kind": "id", "value": WATCHED_ID}) == [201, None]
    log_in(driver, hub, "li-wei")
    open_visitors(driver)
    fill_form(driver, WATCHED_ID, name="赵六", entrances=("gate-north",))
    driver.find_element(By.ID, "vis-submit").click()
    wait(driver, lambda d: d.find_element(By.ID, "vis-detail").is_displayed(), what="the visit")
    [visit] = visits(driver)
    assert visit["state"] == "flagged" and visit["watch"] == ["id"]
    assert listed(driver) == [[visit["id"], "flagged", True]]
    banner = driver.find_element(By.ID, "vis-watch-banner")
    assert banner.is_displayed() and "身份证号在关注名单" in banner.text
    # without a note the page asks for one and sends nothing
    driver.find_element(By.CSS_SELECTOR, '#vis-buttons button[data-action="approve"]').click()
    note_error = driver.find_element(By.ID, "vis-err-note")
    assert note_error.is_displayed() and "必须填写理由" in note_error.text
    assert driver.switch_to.active_element.get_attribute("id") == "vis-note"
    assert visits(driver)[0]["state"] == "flagged"
    # the hub refuses it too (409), whatever the page does
    assert api_forced(driver, "li-wei", "POST", "/api/visitors/visits/%s/approve" % visit["id"],
                      {}) == [409, "conflict"]
    # re-login of the forced call ended nothing of the page's own session
    log_in(driver, hub, "li-wei")
    open_visitors(driver)
    driver.find_element(By.CSS_SELECTOR, '#vis-list button[data-open="%s"]' % visit["id"]).click()
    wait(driver, lambda d: d.find_element(By.ID, "vis-detail").is_displayed(), what="the visit")
    driver.find_element(By.ID, "vis-note").send_keys("派出所核实，同意来访")
    driver.find_element(By.CSS_SELECTOR, '#vis-buttons button[data-action="approve"]').click()
    wait(driver, lambda d: d.find_element(By.ID, "vis-pass").is_displayed(), what="the pass")
    stored = api_get(driver, "/api/visitors/visits/%s" % visit["id"])[1]
    assert (stored["state"], stored["note"]) == ("approved", "派出所核实，同意来访")
    # the watch-list alarm reached the console's alarm list as well
    assert any(a["type"] == "visitor_watchlist" for a in hub.alarms())


def test_roles_without_the_permission_have_no_buttons_and_the_api_refuses(
        visitors_console, driver):
    hub = visitors_console
    hub.account("li-wei", "staff")
    hub.account("officer", "police_liaison")
    hub.account("guard", "read_only")
    log_in(driver, hub, "li-wei")
    open_visitors(driver)
    fill_form(driver, GOOD_ID)
    driver.find_element(By.ID, "vis-submit").click()
    wait(driver, lambda d: d.find_element(By.ID, "vis-detail").is_displayed(), what="the visit")
    [visit] = visits(driver)
    # the police liaison reads visits (in full when asked) but registers and decides nothing
    log_in(driver, hub, "officer")
    open_visitors(driver)
    assert not driver.find_element(By.ID, "vis-new").is_displayed()
    driver.find_element(By.CSS_SELECTOR, '#vis-list button[data-open="%s"]' % visit["id"]).click()
    wait(driver, lambda d: d.find_element(By.ID, "vis-detail").is_displayed(), what="the visit")
    assert not driver.find_element(By.ID, "vis-actions").is_displayed()
    assert driver.find_elements(By.CSS_SELECTOR, "#vis-buttons button") == []
    assert "110***********002X" in driver.find_element(By.ID, "vis-fields").text
    driver.find_element(By.ID, "vis-personal").click()
    wait(driver, lambda d: GOOD_ID in d.find_element(By.ID, "vis-fields").text,
         what="the ID number in full")
    history = driver.find_element(By.ID, "vis-history-list").text
    assert "查看完整个人信息" in history
    for action in ("approve", "refuse", "revoke"):
        assert api_forced(driver, "officer", "POST", "/api/visitors/visits/%s/%s"
                          % (visit["id"], action), {}) == [403, "forbidden"]
    log_in(driver, hub, "officer")
    assert api_get(driver, "/api/visitors/visits/%s/pass/qr.svg" % visit["id"])[0] == 403
    # the read-only account has no visitors page, and the API refuses it
    log_in(driver, hub, "guard")
    assert not driver.find_element(By.ID, "nav-visitors").is_displayed()
    assert api_get(driver, "/api/visitors/visits")[0] == 403
    assert api_forced(driver, "guard", "POST", "/api/visitors/visits/%s/approve" % visit["id"],
                      {}) == [403, "forbidden"]
    assert hub.call(lambda: hub.hub.store.query(
        "SELECT state FROM visits"))[0][0] == "requested"


def test_both_languages_every_text_at_tablet_width_with_the_keyboard(visitors_console, driver):
    hub = visitors_console
    hub.account("li-wei", "staff")
    driver.set_window_size(768, 1000)
    log_in(driver, hub, "li-wei")
    open_visitors(driver)
    fill_form(driver, GOOD_ID)
    # the keyboard only: Enter in a field submits, Esc closes the details
    driver.find_element(By.ID, "vis-in-purpose").send_keys(Keys.ENTER)
    wait(driver, lambda d: d.find_element(By.ID, "vis-detail").is_displayed(), what="the visit")
    assert driver.switch_to.active_element.get_attribute("id") == "vis-detail-heading"
    for lang, word in (("zh-CN", "访客登记"), ("en", "Visitor passes")):
        Select(driver.find_element(By.ID, "lang")).select_by_value(lang)
        wait(driver, lambda d: d.find_element(By.ID, "visitors-heading").text == word,
             what="the %s texts" % lang)
        body = driver.find_element(By.TAG_NAME, "body").text
        assert not KEY_LIKE.findall(body), KEY_LIKE.findall(body)
        assert driver.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth;")
    assert "requested" in driver.find_element(By.CSS_SELECTOR, "#vis-list tr").text
    # the plate put on the watch list later (as POST /api/visitors/watch does): its
    # alarm on the stream makes the page read the visits again, no click needed
    [visit] = visits(driver)
    driver.find_element(By.ID, "vis-note").click()
    hub.call(hub.hub.visitors.book.watch_add, "plate", "粤B12345", "http:officer", None)
    wait(driver, lambda d: listed(d) == [[visit["id"], "flagged", True]]
         and d.find_element(By.ID, "vis-watch-banner").is_displayed(), what="the live flag")
    assert "plate on the watch list" in driver.find_element(By.ID, "vis-watch-banner").text
    # the focus stays where the clerk was (the note)
    assert driver.switch_to.active_element.get_attribute("id") == "vis-note"
    driver.find_element(By.ID, "vis-note").send_keys(Keys.ESCAPE)
    wait(driver, lambda d: not d.find_element(By.ID, "vis-side").is_displayed(),
         what="the details closed")
    assert driver.switch_to.active_element.get_attribute("data-open") is not None
    # the form in English too
    driver.find_element(By.ID, "vis-new").click()
    wait(driver, lambda d: d.find_element(By.ID, "vis-form").is_displayed(), what="the form")
    form = driver.find_element(By.ID, "vis-form").text
    assert "ID number" in form and "gate-north" in form and not KEY_LIKE.findall(form)


def watch_rows(driver):
    return driver.execute_script(
        "return [...document.querySelectorAll('#vis-wl-list tr')].map((r) => "
        "[...r.cells].slice(0, 2).map((c) => c.textContent));")


def test_the_watch_list_is_kept_from_the_page_and_never_shows_a_value(visitors_console, driver):
    hub = visitors_console
    hub.account("li-wei", "staff")
    hub.account("officer", "police_liaison")
    # a clerk without `visitors.watch` has no watch list, and the API refuses her
    log_in(driver, hub, "li-wei")
    open_visitors(driver)
    fill_form(driver, GOOD_ID)
    driver.find_element(By.ID, "vis-submit").click()
    wait(driver, lambda d: d.find_element(By.ID, "vis-detail").is_displayed(), what="the visit")
    [visit] = visits(driver)
    assert not driver.find_element(By.ID, "vis-watch").is_displayed()
    assert api_get(driver, "/api/visitors/watch")[0] == 403
    assert api_forced(driver, "li-wei", "POST", "/api/visitors/watch",
                      {"kind": "plate", "value": "粤B12345"}) == [403, "forbidden"]
    # the police liaison keeps it
    log_in(driver, hub, "officer")
    open_visitors(driver)
    wait(driver, lambda d: d.find_element(By.ID, "vis-wl-empty").is_displayed(),
         what="the empty watch list")
    Select(driver.find_element(By.ID, "vis-wl-kind")).select_by_value("plate")
    driver.find_element(By.ID, "vis-wl-value").send_keys("粤B12")      # too short
    driver.find_element(By.ID, "vis-wl-add").click()
    wait(driver, lambda d: d.find_element(By.ID, "vis-wl-err-value").is_displayed(),
         what="the value's error")
    assert driver.find_element(By.ID, "vis-wl-err-value").text.startswith("“身份证号码或车牌号”有误")
    assert driver.switch_to.active_element.get_attribute("id") == "vis-wl-value"
    assert hub.call(lambda: hub.hub.store.query("SELECT COUNT(*) FROM visitor_watch"))[0][0] == 0
    box = driver.find_element(By.ID, "vis-wl-value")
    box.clear()
    box.send_keys("粤B12345")
    driver.find_element(By.ID, "vis-wl-note").send_keys("协查通报 17")
    driver.find_element(By.ID, "vis-wl-add").click()
    wait(driver, lambda d: watch_rows(d) == [["车牌号", "协查通报 17"]], what="the entry")
    # the registered visit with that plate is flagged at once
    wait(driver, lambda d: listed(d) == [[visit["id"], "flagged", True]], what="the flagged visit")
    assert driver.find_element(By.ID, "vis-wl-result").text == \
        "已加入布控名单；被标记的访客登记：1 条。"
    # no value anywhere: not on the page, not in what the API answers
    assert "粤B12345" not in driver.find_element(By.ID, "vis-watch").text
    status, doc = api_get(driver, "/api/visitors/watch")
    assert status == 200 and "粤B12345" not in str(doc)
    [entry] = doc["entries"]
    assert entry["kind"] == "plate" and entry["added_by"].endswith("officer")
    shot(driver, "console-visitors-watchlist.png")
    # removal asks once more, then the entry is gone (and recorded)
    button = '#vis-wl-list button[data-remove="%d"]' % entry["ref"]
    driver.find_element(By.CSS_SELECTOR, button).click()
    wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, button).text == "确认删除",
         what="the confirmation")
    assert hub.call(lambda: hub.hub.store.query("SELECT COUNT(*) FROM visitor_watch"))[0][0] == 1
    driver.find_element(By.CSS_SELECTOR, button).click()
    wait(driver, lambda d: d.find_element(By.ID, "vis-wl-empty").is_displayed(),
         what="the entry removed")
    assert hub.call(lambda: hub.hub.store.query(
        "SELECT action FROM visitor_watch_log ORDER BY id")) == [("added",), ("removed",)]
    # the visit it flagged stays flagged for a clerk to decide
    assert visits(driver)[0]["state"] == "flagged"
    assert api_forced(driver, "officer", "DELETE", "/api/visitors/watch/%d" % entry["ref"],
                      None) == [404, "unknown_watch_entry"]


FACE_SECTION = """
face:
  models_dir: "%(models)s"
  embedding_model: "%(models)s/mobilefacenet_batch1.tflite"
  detector_ranges: [short, full]
  gallery: "%(gallery)s"
  snapshots: "%(snap)s"
"""


@pytest.fixture
def face_visitors_console(tmp_path, make_broker, driver):
    from hub.registry import kek
    from tests import facedata
    why = facedata.missing()
    if why:
        pytest.fail(why)
    kek.create(tmp_path / "kek")
    text = (VISITORS_YAML + FACE_SECTION).replace("%(lock1)s", LOCK_KEYS[0].hex()) \
        .replace("%(lock2)s", LOCK_KEYS[1].hex()).replace("%(kek)s", str(tmp_path / "kek")).replace("%(reader)s", "33" * 32) \
        .replace("%(models)s", str(facedata.MODELS)) \
        .replace("%(gallery)s", str(tmp_path / "gallery.db")) \
        .replace("%(snap)s", str(tmp_path / "snap"))
    hub = consolekit.HubThread(tmp_path / "hub.db", make_broker("site"), make_broker("upstream"),
                               consolekit.site(text))
    driver.set_window_size(1280, 900)
    try:
        yield hub
    finally:
        driver.get("about:blank")
        hub.stop()


def test_a_photo_at_registration_is_refused_with_its_reason_or_enrols_the_face(
        face_visitors_console, driver):
    from tests import facedata
    hub = face_visitors_console
    hub.account("li-wei", "staff")
    log_in(driver, hub, "li-wei")
    open_visitors(driver)
    assert api_get(driver, "/api/site")[1]["visitors"]["photo"] is True
    fill_form(driver, GOOD_ID)
    assert driver.find_element(By.ID, "vis-in-photo").is_displayed()
    # a face too small to use: refused under the photo, nothing stored
    driver.find_element(By.ID, "vis-in-photo").send_keys(
        str(facedata.IMAGES / "singles" / "Bryan.png"))
    driver.find_element(By.ID, "vis-submit").click()
    wait(driver, lambda d: field_errors(d), what="the photo's error")
    assert field_errors(driver) == {
        "photo": "“访客照片（选填）”有误：人脸太小，请靠近拍摄。未保存任何内容。"}
    assert driver.find_element(By.ID, "vis-in-photo").get_attribute("aria-invalid") == "true"
    assert visits(driver) == []
    assert hub.call(lambda: hub.hub.face.gallery.list()) == []
    # a good photo: registered, the face enrolled (matching nowhere until approved)
    driver.find_element(By.ID, "vis-in-photo").send_keys(
        str(facedata.IMAGES / "obama" / "obama.jpg"))
    driver.find_element(By.ID, "vis-submit").click()
    wait(driver, lambda d: d.find_element(By.ID, "vis-detail").is_displayed(), what="the visit")
    [visit] = visits(driver)
    assert driver.find_element(By.ID, "vis-result").text == \
        "已登记，状态：待审批。人脸已录入：访客登记通过后，仅在有效期内可刷脸通行所选出入口。"
    person = hub.call(lambda: hub.hub.face.gallery.get("visitor-" + visit["id"]))
    assert person is not None and person.schedule == [{"from": 0, "until": 0}]


def test_a_visit_shows_its_entries_with_the_credential_used(visitors_console, driver):
    hub = visitors_console
    hub.account("li-wei", "staff")
    book = hub.hub.visitors.book
    now = hub.call(hub.hub.clock.now)
    visit = hub.call(book.register, {
        "flat": "b1-102", "name": "张伟", "phone": "13812345678", "id_number": GOOD_ID,
        "purpose": "探亲", "valid_from": now - 60, "valid_until": now + 3600,
        "entry": "repeated", "entrances": ["gate-north"]}, "http:li-wei")
    hub.call(book.decide, visit["id"], "approve", "http:li-wei", None)
    token = hub.call(book.pass_of, visit["id"])["qr"]
    reader = book.settings.readers["gate-north-qr"]
    assert hub.call(book.admit_qr, reader, token)[:2] == (True, "ok")
    assert hub.call(book.admit_qr, reader, token, "out")[0] is True
    log_in(driver, hub, "li-wei")
    open_visitors(driver)
    driver.find_element(By.CSS_SELECTOR, '#vis-list button[data-open="%s"]' % visit["id"]).click()
    wait(driver, lambda d: d.find_element(By.ID, "vis-detail").is_displayed(), what="the visit")
    rows = [[td.text for td in r.find_elements(By.TAG_NAME, "td")][1:]
            for r in driver.find_elements(By.CSS_SELECTOR, "#vis-entry-list tr")]
    assert rows == [["gate-north", "二维码", "进"], ["gate-north", "二维码", "出"]]
    assert not driver.find_element(By.ID, "vis-no-entries").is_displayed()
