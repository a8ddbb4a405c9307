"""The site plan and the responders (hub/config/plan.py, hub/console/plan.py,
hub/responders/board.py): the site file's plan keys load and, when wrong, fail
naming the file, line and key; a site without a plan gets a grid; the plan
document gives names only to roles that may see them; the nearest responder
on duty is chosen by plan distance; plan images are checked by type, magic and
size; a dispatch carries whom it sends through the one command path."""
import pytest

from hub import ConfigError
from hub.alarms import commands, lifecycle
from hub.config import plan as site_plan
from hub.config import site as config
from hub.config import yamlfile
from hub.console import plan
from hub.responders import board as responders
from hub.web.http import HttpError

SITE = """\
site:
  id: sunrise
  plan: {width: 800, height: 400}
buildings:
  - id: b1
    plan: {x: 20, y: 20, w: 200, h: 150}
    flats:
      - id: b1-101
        residents: [{id: r-1, name: 王兰, lives_alone: true}]
      - id: b1-201
        residents: [{id: r-2, name: Li, role: tenant, from: 2026-01-01}]
  - id: b2
    outline: [[400, 50], [700, 50], [700, 300], [400, 300]]
    flats:
      - {id: b2-a, floor: 3}
devices:
  - {id: door-101, kind: door_sensor, board: esp32c3, flat: b1-101, transport: mqtt, heartbeat: 60s}
responders:
  - {id: p-zhang, name: 张警官, kind: police}
  - {id: v-li, name: 李阿姨, kind: volunteer, on_duty: false}
"""


def load(text):
    return config.parse_site(yamlfile.loads(text, "site.yaml"), require_keys=False)


def test_plan_keys_load():
    cfg = load(SITE)
    assert cfg.plan_size == (800.0, 400.0)
    assert cfg.outlines["b1"] == [(20, 20), (220, 20), (220, 170), (20, 170)]
    assert cfg.outlines["b2"][2] == (700, 300)
    assert [cfg.flats[f].floor for f in ("b1-101", "b1-201", "b2-a")] == [1, 2, 3]
    assert cfg.responders["p-zhang"].kind == "police" and cfg.responders["p-zhang"].on_duty
    assert cfg.responders["v-li"].on_duty is False


def test_a_site_without_a_plan_gets_a_grid():
    cfg = load("site: {id: s}\nbuildings: [{id: a}, {id: b}, {id: c}]\n")
    assert cfg.plan_size is None and cfg.outlines == {} and cfg.responders == {}
    shapes, auto = plan.outlines(cfg)
    assert auto and set(shapes) == {"a", "b", "c"}
    boxes = [(min(p[0] for p in s), max(p[0] for p in s), min(p[1] for p in s)) for s in
             shapes.values()]
    # side by side, inside the default plan, not overlapping
    assert all(0 <= x0 < x1 <= site_plan.PLAN_SIZE[0] for x0, x1, _ in boxes)
    assert sorted(boxes)[0][1] < sorted(boxes)[1][0]


@pytest.mark.parametrize("old, new, where", [
    ("  plan: {width: 800, height: 400}", "  plan: {width: 800}", "site.yaml:3: site.plan: missing key 'height'"),
    ("  plan: {width: 800, height: 400}", "  plan: {width: -1, height: 400}", "site.yaml:3: key 'width'"),
    ("  plan: {width: 800, height: 400}", "  plan: {widht: 800, height: 400}", "site.yaml:3: unknown key 'widht'"),
    ("    plan: {x: 20, y: 20, w: 200, h: 150}", "    plan: {x: 700, y: 20, w: 200, h: 150}",
     "site.yaml:6: key 'plan': the rectangle reaches past the site plan"),
    ("    plan: {x: 20, y: 20, w: 200, h: 150}", "    plan: {x: 20, y: 20, w: 200}",
     "site.yaml:6: building plan: missing key 'h'"),
    ("    outline: [[400, 50], [700, 50], [700, 300], [400, 300]]", "    outline: [[400, 50], [700, 50]]",
     "site.yaml:13: key 'outline': expected a list of 3..64 points"),
    ("    outline: [[400, 50], [700, 50], [700, 300], [400, 300]]",
     "    outline: [[400, 50], [900, 50], [700, 300]]", "site.yaml:13: key 'outline': point 1"),
    ("      - {id: b2-a, floor: 3}", "      - {id: b2-a, floor: three}", "site.yaml:15: key 'floor'"),
    ("  - {id: p-zhang, name: 张警官, kind: police}", "  - {id: p-zhang, name: 张警官, kind: cop}",
     "site.yaml:19: key 'kind': 'cop'; allowed: police, auxiliary_police"),
    ("  - {id: p-zhang, name: 张警官, kind: police}", "  - {id: door-101, kind: police}",
     "site.yaml:19: key 'id': responder id 'door-101' is taken: device id"),
    ("  - {id: p-zhang, name: 张警官, kind: police}", "  - {id: v-li, kind: police}",
     "site.yaml:20: duplicate responder id 'v-li'"),
    ("  - {id: p-zhang, name: 张警官, kind: police}", "  - {id: p-zhang, kind: police, on_duty: yes-ish}",
     "site.yaml:19: key 'on_duty'"),
    ("  - {id: p-zhang, name: 张警官, kind: police}", "  - {id: p-zhang, kind: police, rank: 3}",
     "site.yaml:19: unknown key 'rank' in responder"),
])
def test_bad_plan_keys_name_file_line_and_key(old, new, where):
    assert old in SITE
    with pytest.raises(ConfigError) as err:
        load(SITE.replace(old, new))
    assert str(err.value).startswith(where), str(err.value)


def test_plan_and_outline_together_are_refused():
    text = SITE.replace("    plan: {x: 20, y: 20, w: 200, h: 150}",
                        "    plan: {x: 20, y: 20, w: 200, h: 150}\n    outline: [[1, 1], [2, 2], [1, 2]]")
    with pytest.raises(ConfigError, match=r"site.yaml:7: key 'outline': give a building 'plan'"):
        load(text)


def plan_doc(see_names, states=None, alarms=()):
    cfg = load(SITE)
    return plan.plan_doc(cfg, states or {}, list(alarms), [], 1000.0, see_names, False)


def test_the_plan_document_has_flags_for_everyone_and_names_only_for_some():
    alarm = {"id": "a1", "type": "tamper", "state": "raised", "building": "b1", "flat": "b1-101",
             "device": "door-101"}
    doc = plan_doc(False, {"door-101": {"last_seen": 990.0, "case_open": 1, "battery_low": 0}},
                   [alarm])
    b1 = doc["buildings"][0]
    assert [f["floor"] for f in b1["floors"]] == [1, 2] and not b1["auto"]
    f101, f201 = b1["floors"][0]["flats"][0], b1["floors"][1]["flats"][0]
    assert (f101["lives_alone"], f101["rental"], f201["rental"]) == (True, False, True)
    assert "residents" not in f101 and "王兰" not in repr(doc)
    assert f101["alarms"] == ["a1"] and b1["alarms"] == ["a1"]
    (dev,) = doc["devices"]
    assert (dev["status"], dev["tamper"], dev["battery_low"], dev["alarms"]) == \
        ("online", True, False, ["a1"])
    named = plan_doc(True)
    assert named["buildings"][0]["floors"][0]["flats"][0]["residents"][0]["name"] == "王兰"


def test_device_status_from_last_seen():
    assert plan.device_status(None, 60, 1000) == "unknown"
    assert plan.device_status(1000 - 150, 60, 1000) == "online"   # 2.5 heartbeats
    assert plan.device_status(1000 - 151, 60, 1000) == "offline"


def test_nearest_responder_on_duty_by_plan_distance():
    docs = [{"id": "far", "on_duty": True, "x": 500.0, "y": 300.0},
            {"id": "near", "on_duty": True, "x": 130.0, "y": 90.0},
            {"id": "off", "on_duty": False, "x": 120.0, "y": 95.0},
            {"id": "nowhere", "on_duty": True, "x": None, "y": None}]
    found = responders.nearest(docs, (120.0, 95.0))
    assert [d["id"] for _, d in found] == ["near", "far"]
    assert round(found[0][0], 2) == 11.18
    assert responders.nearest([], (0, 0)) == []
    cfg = load(SITE)
    assert plan.alarm_point(cfg, {"building": "b1"}) == (120.0, 95.0)
    assert plan.alarm_point(cfg, {"building": None, "flat": "b2-a"}) == (550.0, 175.0)
    assert plan.alarm_point(cfg, {"building": None, "flat": None}) is None


@pytest.mark.parametrize("payload, reason", [
    (b"{", "malformed"), (b"[1, 2]", "malformed"), (b'{"x": 1}', "bad_field"),
    (b'{"x": 900, "y": 1}', "bad_field"), (b'{"x": true, "y": 1}', "bad_field"),
    (b'{"x": 1, "y": 1, "on_duty": "yes"}', "bad_field"), (b" " * 2000, "oversized"),
])
def test_bad_position_reports(payload, reason):
    with pytest.raises(responders.PositionInvalid) as err:
        responders.parse_position(payload, (800, 400))
    assert err.value.reason == reason


def test_the_board_records_reports_and_tells_its_listeners():
    cfg = load(SITE)

    class Clock:
        def now(self):
            return 1767225600.0
    board = responders.ResponderBoard(lambda: cfg, Clock(), lambda: cfg.plan_size)
    woken = []
    off = board.on_change(lambda: woken.append(1))
    doc = board.report("p-zhang", b'{"x": 10, "y": 20}', "mqtt")
    assert (doc["x"], doc["y"], doc["source"], doc["on_duty"]) == (10.0, 20.0, "mqtt", True)
    assert doc["at"].startswith("2026-01-01T00:00:00")
    with pytest.raises(KeyError):
        board.report("nobody", {"x": 1, "y": 1}, "http")
    version, changed = board.changes_after(0)
    assert version == 1 and [d["id"] for d in changed] == ["p-zhang"]
    assert board.changes_after(1) == (1, [])
    off()
    board.report("v-li", {"x": 1, "y": 1, "on_duty": True}, "http")
    assert woken == [1] and board.doc("v-li")["on_duty"] is True


PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 32


def test_plan_images_are_checked():
    assert plan.check_image("image/png", PNG) == ".png"
    assert plan.check_image("image/jpeg; charset=binary", JPEG) == ".jpg"
    for ctype, data, status in (("image/gif", b"GIF89a", 415), ("image/png", JPEG, 400),
                                ("image/jpeg", PNG, 400), ("image/svg+xml", b"<svg/>", 415),
                                ("image/png", b"", 400), (None, PNG, 415),
                                ("image/png", PNG + b"\0" * 100, 413)):
        with pytest.raises(HttpError) as err:
            plan.check_image(ctype, data, limit=60)
        assert err.value.status == status, (ctype, data[:8])


def test_dispatch_names_whom_it_sends_through_the_command_path():
    cmd = commands.parse({"command_id": "c1", "alarm_id": "a", "action": "dispatch",
                          "assignee": "p-zhang"})
    assert cmd["assignee"] == "p-zhang"
    with pytest.raises(commands.CommandInvalid, match="dispatch only"):
        commands.parse({"command_id": "c1", "alarm_id": "a", "action": "resolve",
                        "assignee": "p-zhang"})
    with pytest.raises(commands.CommandInvalid):
        commands.parse({"command_id": "c1", "alarm_id": "a", "action": "dispatch",
                        "assignee": "x" * 200})
    assert commands.parse({"command_id": "c1", "alarm_id": "a", "action": "dispatch"})[
        "assignee"] is None
    doc = {"id": "a", "seq": 1, "state": "raised"}
    sent = lifecycle.transition_doc(doc, "dispatched", "t", "desk", None, "p-zhang")
    assert sent["assignee"] == "p-zhang" and sent["history"][-1]["assignee"] == "p-zhang"
    plain = lifecycle.transition_doc(doc, "dispatched", "t", "desk")
    assert "assignee" not in plain and "assignee" not in plain["history"][-1]
