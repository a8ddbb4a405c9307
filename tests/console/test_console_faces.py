"""Face enrolment in a real Chromium against a hub with face access and the
real models (docs/console.md, "Faces"; docs/face_access.md, "Enrollment"): a
photo the pipeline refuses shows its reason, translated, next to the photos
and nothing is stored; a good photo enrols the person; a role without
`faces.write` has no form and the API refuses it."""
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests import facedata
from tests.console import consolekit
from tests.console.consolekit import PASSWORD, wait
from tests.console.test_console_browser import log_in
from tests.console.test_console_plan import shot

pytestmark = pytest.mark.broker

FACE_YAML = consolekit.SITE_YAML + """
face:
  models_dir: "%(models)s"
  embedding_model: "%(models)s/mobilefacenet_batch1.tflite"
  detector_ranges: [short, full]
  gallery: "%(gallery)s"
  snapshots: "%(snap)s"
"""


@pytest.fixture
def face_console(tmp_path, make_broker, driver):
    why = facedata.missing()
    if why:
        pytest.fail(why)
    text = FACE_YAML.replace("%(models)s", str(facedata.MODELS)) \
        .replace("%(gallery)s", str(tmp_path / "gallery.db")) \
        .replace("%(snap)s", str(tmp_path / "snap"))
    hub = consolekit.HubThread(tmp_path / "hub.db", make_broker("site"), make_broker("upstream"),
                               consolekit.site(text))
    try:
        yield hub
    finally:
        driver.get("about:blank")
        hub.stop()


def persons(driver):
    return driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch('/api/face/persons', {credentials: 'same-origin'})
          .then(async (r) => done([r.status, (await r.json()).persons]));""")


def listed(driver):
    return driver.execute_script(
        "return [...document.querySelectorAll('#face-list tr')].map((r) => r.dataset.person);")


def test_a_refused_photo_shows_its_reason_and_a_good_one_enrols(face_console, driver):
    hub = face_console
    hub.account("li-wei", "staff")
    log_in(driver, hub, "li-wei")
    driver.find_element(By.ID, "nav-faces").click()
    wait(driver, lambda d: d.find_element(By.ID, "face-empty").is_displayed(), what="the list")
    # the form says what is missing before anything is sent
    driver.find_element(By.ID, "face-submit").click()
    assert driver.find_element(By.ID, "face-err-id").text == "必填。"
    driver.find_element(By.ID, "face-id").send_keys("r-101")
    driver.find_element(By.ID, "face-name").send_keys("王兰")
    driver.find_element(By.ID, "face-entrances").send_keys("b1-main")
    # a face too small for enrolment (a real photo; the pipeline's own gate)
    driver.find_element(By.ID, "face-photos").send_keys(
        str(facedata.IMAGES / "singles" / "Bryan.png"))
    driver.find_element(By.ID, "face-submit").click()
    wait(driver, lambda d: d.find_element(By.ID, "face-err-photos").is_displayed(), 30,
         what="the refusal")
    refusal = driver.find_element(By.ID, "face-err-photos").text
    assert refusal == "第 1 张照片（Bryan.png）未通过：人脸太小，请靠近拍摄。未保存任何内容。"
    assert driver.find_element(By.ID, "face-photos").get_attribute("aria-invalid") == "true"
    shot(driver, "console-faces-refused.png")
    assert persons(driver) == [200, []]
    assert hub.call(hub.hub.store.access_log) == []
    Select(driver.find_element(By.ID, "lang")).select_by_value("en")
    driver.find_element(By.ID, "face-submit").click()
    wait(driver, lambda d: "too small" in d.find_element(By.ID, "face-err-photos").text, 30,
         what="the refusal in English")
    assert driver.find_element(By.ID, "face-err-photos").text == \
        "Photo 1 (Bryan.png) refused: the face is too small; take it closer. Nothing was stored."
    Select(driver.find_element(By.ID, "lang")).select_by_value("zh-CN")
    # a good photo
    driver.find_element(By.ID, "face-photos").clear()
    driver.find_element(By.ID, "face-photos").send_keys(str(facedata.IMAGES / "obama" / "obama.jpg"))
    driver.find_element(By.ID, "face-submit").click()
    wait(driver, lambda d: listed(d) == ["r-101"], 30, what="the enrolled person")
    assert not driver.find_element(By.ID, "face-err-photos").is_displayed()
    status, found = persons(driver)
    assert status == 200 and [(p["id"], p["name"], p["entrances"], p["embeddings"])
                              for p in found] == [("r-101", "王兰", ["b1-main"], 1)]
    assert "已录入 r-101" in driver.find_element(By.ID, "face-result").text
    (entry,) = hub.call(hub.hub.store.access_log)
    assert (entry["kind"], entry["payload"]["account"]) == ("face_person_enrolled", "li-wei")
    # removal asks once more
    driver.find_element(By.CSS_SELECTOR, '#face-list button[data-remove="r-101"]').click()
    driver.find_element(By.CSS_SELECTOR, '#face-list button[data-remove="r-101"]').click()
    wait(driver, lambda d: listed(d) == [], what="the removal")
    assert persons(driver) == [200, []]


def test_without_faces_write_there_is_no_form_and_the_api_refuses(face_console, driver):
    hub = face_console
    hub.account("root", "admin")
    hub.account("wall", "read_only")
    log_in(driver, hub, "wall")
    assert not driver.find_element(By.ID, "nav-faces").is_displayed()
    status = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        (async () => {
          const login = await fetch('/api/login', {method: 'POST',
            headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({account: 'wall', password: arguments[0]})});
          const csrf = (await login.json()).csrf_token;
          const r = await fetch('/api/face/persons', {method: 'POST',
            headers: {'Content-Type': 'application/json', 'X-CSRF-Token': csrf},
            body: JSON.stringify({id: 'r-9', name: 'X', photos: ['AAAA']})});
          done([r.status, (await r.json()).error]);
        })();""", PASSWORD)
    assert status == [403, "forbidden"]
