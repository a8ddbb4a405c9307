"""Scenario steps and expectations of the visitor gate readers and vehicle
barriers (simulator/scenario_readers.py through simulator.scenario.parse):
`plate`, `qr`, `reader_inject`, the `gate` and `visitor_log` expectations.
A bad one is refused when the file is read, naming the file, the line, the
step and the key."""
from __future__ import annotations

import pytest

from hub import ConfigError
from hub.config import yamlfile
from host_tools import boards
from simulator import scenario

BASE = [
    "site: {id: lotus, name: Lotus}",                                            # 1
    "visitors:",                                                                 # 2
    "  readers:",                                                                # 3
    "    - {id: gate-qr, kind: qr_reader, entrance: gate, key: '%s'}" % ("5a" * 32),   # 4
    "    - {id: barrier, kind: barrier, entrance: car, key: '%s'}" % ("c3" * 32),      # 5
    "buildings:",                                                                # 6
    "  - {id: b1, flats: [{id: b1-101, residents: [{id: r-101, name: Zhou Min}]}]}",  # 7
    "timeline:",                                                                 # 8
    "  - at: 1m",                                                                # 9
    "    action: visit",                                                         # 10
    "    value: {name: guest, flat: b1-101, visitor: Li Hua, phone: '13800138000',"
    " id_number: '310115198511202034', plate: '粤BD12345', purpose: dinner, from: 1h,"
    " until: 2h, entrances: [gate, car]}",                                       # 11
    "  - {at: 2m, action: visit_decide, value: {visit: guest, action: approve}}",  # 12
    "  - {at: 1h1m, device: barrier, action: plate, value: '粤BD12345'}",         # 13
    "  - {at: 1h2m, device: barrier, action: plate, value: {plate: '粤 BD-12345', "
    "direction: out}}",                                                          # 14
    "  - {at: 1h3m, device: gate-qr, action: qr, value: {visit: guest}}",         # 15
    "  - {at: 1h4m, device: barrier, action: reader_inject, value: replayed}",   # 16
    "  - {at: 1h5m, device: gate-qr, action: reader_inject, value: forged_command}",  # 17
    "expect:",                                                                   # 18
    "  - {gate: barrier, open: true, direction: in, count: 1}",                  # 19
    "  - {gate: barrier, rejected: replayed, count: 1}",                         # 20
    "  - {gate: gate-qr, ignored: forged, count: 1}",                            # 21
    "  - {visitor_log: visitor_plate_unknown, reader: barrier, count: 0}",       # 22
]


def variant(changes):
    out = [changes.get(n, line) for n, line in enumerate(BASE, start=1)]
    return "\n".join(line for line in out if line is not None) + "\n"


def parse(text):
    return scenario.parse(yamlfile.loads(text, "scn/r.yaml"), boards_loader=boards.load)


def test_base_is_valid():
    sc = parse(variant({}))
    steps = [(s.device, s.action, s.value) for s in sc.steps if s.device is not None]
    assert steps == [
        ("barrier", "plate", {"plate": "粤BD12345", "direction": "in"}),
        ("barrier", "plate", {"plate": "粤BD12345", "direction": "out"}),  # normalised
        ("gate-qr", "qr", {"visit": "guest", "direction": "in"}),
        ("barrier", "reader_inject", {"inject": "replayed"}),
        ("gate-qr", "reader_inject", {"inject": "forged_command"}),
    ]
    assert [(e.kind, e.spec) for e in sc.expectations] == [
        ("gate", {"what": "barrier", "count": 1, "open": True, "direction": "in"}),
        ("gate", {"what": "barrier", "count": 1, "rejected": "replayed"}),
        ("gate", {"what": "gate-qr", "count": 1, "ignored": "forged"}),
        ("visitor_log", {"what": "visitor_plate_unknown", "count": 0, "reader": "barrier"}),
    ]


def test_the_timeline_masks_the_plate():
    from simulator import reader_steps
    sc = parse(variant({}))
    shown = [reader_steps.step_value(s) for s in sc.steps if s.action == "plate"]
    assert shown == ["粤B****45, in", "粤B****45, out"]
    assert not any("BD12345" in s or "D123" in s for s in shown)


CASES = [
    ("unknown_reader", {13: "  - {at: 1h1m, device: barrier-west, action: plate, "
                            "value: '粤BD12345'}"}, 13,
     ["key 'device'", "barrier-west", "known: barrier, gate-qr"]),
    ("reader_without_device", {13: "  - {at: 1h1m, action: plate, value: '粤BD12345'}"}, 13,
     ["key 'device'", "'plate'"]),
    ("plate_at_a_qr_reader", {13: "  - {at: 1h1m, device: gate-qr, action: plate, "
                                  "value: '粤BD12345'}"}, 13,
     ["'plate' is for a barrier", "'gate-qr' is a qr_reader"]),
    ("qr_at_a_barrier", {15: "  - {at: 1h3m, device: barrier, action: qr, "
                             "value: {visit: guest}}"}, 15, ["'qr' is for a qr_reader"]),
    ("lock_action_at_a_reader", {13: "  - {at: 1h1m, device: barrier, action: pin, "
                                     "value: '1234'}"}, 13,
     ["action 'pin'", "visitor reader", "plate, qr, reader_inject"]),
    ("qr_for_an_unknown_visit", {15: "  - {at: 1h3m, device: gate-qr, action: qr, "
                                     "value: {visit: ghost}}"}, 15,
     ["action 'qr'", "key 'visit'", "ghost"]),
    ("qr_as_text", {15: "  - {at: 1h3m, device: gate-qr, action: qr, value: AV1xyz}"}, 15,
     ["action 'qr'", "{visit: NAME"]),
    ("malformed_plate", {13: "  - {at: 1h1m, device: barrier, action: plate, "
                             "value: '粤BI12345'}"}, 13, ["action 'plate'", "key 'plate'"]),
    ("plate_no_province", {13: "  - {at: 1h1m, device: barrier, action: plate, "
                               "value: 'AB12345'}"}, 13, ["key 'plate'", "province"]),
    ("plate_unknown_key", {14: "  - {at: 1h2m, device: barrier, action: plate, value: "
                               "{plate: '粤BD12345', lane: 2}}"}, 14, ["action 'plate'"]),
    ("plate_bad_direction", {14: "  - {at: 1h2m, device: barrier, action: plate, value: "
                                 "{plate: '粤BD12345', direction: sideways}}"}, 14,
     ["key 'direction'", "sideways"]),
    ("inject_unknown", {16: "  - {at: 1h4m, device: barrier, action: reader_inject, "
                            "value: garbled}"}, 16, ["'reader_inject'", "forged, replayed"]),
    ("replay_before_any_report", {16: "  - {at: 1h4m, device: gate-qr, action: reader_inject, "
                                      "value: replayed}", 15: None}, 15,
     ["'reader_inject'", "'replayed'", "gate-qr"]),
    ("gate_unknown_reader", {19: "  - {gate: barrier-west, open: true, count: 1}"}, 19,
     ["key 'gate'", "barrier-west"]),
    ("gate_unknown_key", {19: "  - {gate: barrier, open: true, colour: red, count: 1}"}, 19,
     ["'gate' expectation", "unknown key 'colour'"]),
    ("gate_without_count", {19: "  - {gate: barrier, open: true}"}, 19, ["'count'"]),
    ("gate_open_not_bool", {19: "  - {gate: barrier, open: maybe, count: 1}"}, 19,
     ["key 'open'"]),
    ("gate_unknown_reason", {19: "  - {gate: barrier, reason: not_yet_valid, count: 1}"}, 19,
     ["key 'reason'", "not_yet_valid", "not_yet,"]),
    ("gate_rejected_and_open", {20: "  - {gate: barrier, rejected: replayed, open: false, "
                                    "count: 1}"}, 20, ["one at a time"]),
    ("gate_unknown_rejection", {20: "  - {gate: barrier, rejected: late, count: 1}"}, 20,
     ["key 'rejected'", "late"]),
    ("gate_unknown_ignore", {21: "  - {gate: gate-qr, ignored: rude, count: 1}"}, 21,
     ["key 'ignored'", "mismatched"]),
    ("log_unknown_kind", {22: "  - {visitor_log: visitor_cookie, count: 1}"}, 22,
     ["key 'visitor_log'", "visitor_plate_unknown"]),
    ("log_unknown_key", {22: "  - {visitor_log: visitor_entry, count: 1, plate: x}"}, 22,
     ["'visitor_log' expectation", "unknown key 'plate'"]),
    ("log_unknown_reader", {22: "  - {visitor_log: visitor_entry, reader: door, count: 1}"}, 22,
     ["key 'reader'", "door"]),
    ("no_visitors_section", {n: None for n in range(2, 6)}, 5, ["'visit'", "'visitors:'"]),
]


@pytest.mark.parametrize(("changes", "line", "needles"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_reader_steps_name_file_line_and_key(changes, line, needles):
    with pytest.raises(ConfigError) as info:
        parse(variant(changes))
    msg = str(info.value)
    assert msg.startswith("scn/r.yaml:%d:" % line), msg
    for needle in needles:
        assert needle in msg, (needle, msg)
    assert "\n" not in msg
