"""Scenario steps through the hub's visitor service (simulator.scenario:
`visit`, `visit_decide`, `visit_watch`, `visitor` with {visit: NAME}, the
`visit` and `visit_record` expectations): a bad value is refused when the
file is read, naming the file, the line and the key, with the hub's own
field checks (hub/visitors/fields.py) and roles (hub/auth/roles.py)."""
from __future__ import annotations

import pytest

from hub import ConfigError
from hub.config import yamlfile
from host_tools import boards
from simulator import scenario

GUEST = ("{name: guest, flat: b1-101, visitor: Li Hua, phone: '13800138000', "
         "id_number: '310115198511202034', purpose: dinner, from: 1h, until: 2h, "
         "entry: repeated, entrances: [b1-entrance]}")

BASE = [
    "site: {id: lotus, name: Lotus}",              # 1
    "visitors: {retention_days: 90}",              # 2
    "buildings:",                                  # 3
    "  - id: b1",                                  # 4
    "    flats:",                                  # 5
    "      - id: b1-101",                          # 6
    "        residents:",                          # 7
    "          - {id: r-101, name: Zhou Min}",     # 8
    "devices:",                                    # 9
    "  - {id: lock-gate, kind: smart_lock, board: pico_w, entrance: b1-entrance, "
    "transport: mqtt, heartbeat: 1h}",             # 10
    "  - {id: lock-101, kind: smart_lock, board: pico_w, flat: b1-101, transport: mqtt, "
    "heartbeat: 1h}",                              # 11
    "timeline:",                                   # 12
    "  - {at: 1m, action: visit, value: %s}" % GUEST,                          # 13
    "  - {at: 2m, action: visit_decide, value: {visit: guest, action: approve}}",  # 14
    "  - {at: 3m, action: visit_watch, value: {id_number: '110101199003074514'}}",  # 15
    "  - {at: 1h5m, device: lock-gate, action: visitor, value: {visit: guest}}",   # 16
    "expect:",                                     # 17
    "  - {visit: guest, state: approved}",         # 18
    "  - {visit_record: guest, count: 1}",         # 19
    "  - {access: lock-gate, code: guest, count: 1}",  # 20
]


def variant(changes):
    out = [changes.get(n, line) for n, line in enumerate(BASE, start=1)]
    return "\n".join(line for line in out if line is not None) + "\n"


def parse(text):
    return scenario.parse(yamlfile.loads(text, "scn/v.yaml"), boards_loader=boards.load)


def test_base_is_valid():
    sc = parse(variant({}))
    assert [(s.at, s.action) for s in sc.steps] == [
        (60, "visit"), (120, "visit_decide"), (180, "visit_watch"), (3900, "visitor")]
    visit = sc.steps[0].value
    assert visit["by"] == "resident" and visit["spec"]["from"] == 3600
    body = scenario.visit_body(visit["spec"], 1000.0)
    assert body["name"] == "Li Hua" and (body["valid_from"], body["valid_until"]) == (4600, 8200)
    assert sc.visits["guest"]["locks"] == ["lock-gate"]  # the entrance's lock, not the flat's
    assert sc.steps[1].value == {"visit": "guest", "action": "approve", "by": "staff",
                                 "note": None}
    assert sc.steps[2].value["by"] == "police_liaison"
    assert sc.steps[3].value == {"visit": "guest"}
    assert [e.kind for e in sc.expectations] == ["visit", "visit_record", "access"]
    assert sc.expectations[2].spec["visit"] == "guest"


def visit_with(**kw):
    fields = dict(name="guest", flat="b1-101", visitor="Li Hua", phone="'13800138000'",
                  id_number="'310115198511202034'", purpose="dinner", **{"from": "1h"},
                  until="2h", entry="repeated", entrances="[b1-entrance]")
    fields.update(kw)
    return "  - {at: 1m, action: visit, value: {%s}}" % ", ".join(
        "%s: %s" % (k, v) for k, v in fields.items() if v is not None)


CASES = [
    ("no_visitors_section", {2: None}, 12, ["'visit'", "'visitors:'"]),
    ("bad_id_number", {13: visit_with(id_number="'310115198511202035'")}, 13,
     ["'visit'", "key 'id_number'"]),
    ("bad_phone", {13: visit_with(phone="'12345'")}, 13, ["key 'phone'"]),
    ("unknown_entrance", {13: visit_with(entrances="[gate-south]")}, 13,
     ["key 'entrances[0]'", "gate-south"]),
    ("unknown_flat", {13: visit_with(flat="b9-999")}, 13, ["key 'flat'", "b9-999"]),
    ("window_backwards", {13: visit_with(until="30m")}, 13, ["'visit'", "key 'until'"]),
    ("window_over_before_the_step", {13: visit_with(**{"from": "0s"}, until="30s")}, 13,
     ["'visit'", "key 'until'"]),
    ("unknown_key", {13: visit_with(colour="red")}, 13, ["unknown key 'colour'"]),
    ("missing_name", {13: visit_with(name=None)}, 13, ["missing key 'name'"]),
    ("role_may_not_register", {13: visit_with(by="read_only")}, 13,
     ["key 'by'", "visitors.register"]),
    ("unknown_role", {13: visit_with(by="janitor")}, 13, ["key 'by'", "janitor"]),
    ("visit_with_device", {13: "  - {at: 1m, device: lock-gate, action: visit, value: %s}"
                           % GUEST}, 13, ["'visit'", "'device'"]),
    ("decide_unknown_visit", {14: "  - {at: 2m, action: visit_decide, value: {visit: ghost, "
                                  "action: approve}}"}, 14, ["key 'visit'", "ghost"]),
    ("decide_unknown_action", {14: "  - {at: 2m, action: visit_decide, value: {visit: guest, "
                                   "action: welcome}}"}, 14, ["key 'action'", "welcome"]),
    ("resident_may_not_approve", {14: "  - {at: 2m, action: visit_decide, value: {visit: guest,"
                                      " action: approve, by: resident}}"}, 14,
     ["key 'by'", "visitors.approve"]),
    ("staff_may_not_watch", {15: "  - {at: 3m, action: visit_watch, value: {id_number: "
                                 "'110101199003074514', by: staff}}"}, 15,
     ["key 'by'", "visitors.watch"]),
    ("watch_bad_id", {15: "  - {at: 3m, action: visit_watch, value: {id_number: '1234'}}"}, 15,
     ["'visit_watch'", "key 'id_number'"]),
    ("watch_nothing", {15: "  - {at: 3m, action: visit_watch, value: {note: x}}"}, 15,
     ["'visit_watch'", "id_number or plate"]),
    ("visitor_unknown_visit", {16: "  - {at: 1h5m, device: lock-gate, action: visitor, "
                                   "value: {visit: ghost}}"}, 16, ["key 'visit'", "ghost"]),
    ("visitor_at_a_lock_not_covered", {16: "  - {at: 1h5m, device: lock-101, action: visitor, "
                                           "value: {visit: guest}}"}, 16,
     ["key 'visit'", "lock-101"]),
    ("expect_unknown_visit", {18: "  - {visit: ghost, state: approved}"}, 18,
     ["key 'visit'", "ghost"]),
    ("expect_bad_state", {18: "  - {visit: guest, state: happy}"}, 18, ["'state'", "flagged"]),
    ("record_count_not_int", {19: "  - {visit_record: guest, count: once}"}, 19, ["'count'"]),
    ("access_code_of_visit_elsewhere", {20: "  - {access: lock-101, code: guest, count: 1}"},
     20, ["key 'code'", "visit 'guest' has no code for lock-101"]),
]


@pytest.mark.parametrize(("changes", "line", "needles"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_visit_steps_name_file_line_and_key(changes, line, needles):
    with pytest.raises(ConfigError) as info:
        parse(variant(changes))
    msg = str(info.value)
    assert msg.startswith("scn/v.yaml:%d:" % line), msg
    for needle in needles:
        assert needle in msg, (needle, msg)
    assert "\n" not in msg
