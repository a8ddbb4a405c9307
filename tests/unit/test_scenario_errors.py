"""Scenario file errors (simulator.scenario.parse) and the CLI's handling of
invalid input: `anju sim check`, `anju sim run` and `anju config check` exit
with 2 and one line naming file, line and key, without a traceback and
without creating anything."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from hub import ConfigError
from hub.config import yamlfile
from host_tools import boards
from simulator import scenario

REPO = Path(__file__).resolve().parents[2]
ANJU = REPO / ".venv" / "bin" / "anju"
SCENARIOS = sorted((REPO / "scenarios").glob("*.yaml"))

BASE_LINES = [
    "name: inactivity after an evening",     # 1
    "site: {id: sunrise, name: Sunrise}",    # 2
    "buildings:",                            # 3
    "  - id: b1",                            # 4
    "    flats:",                            # 5
    "      - id: b1-101",                    # 6
    "        inactivity: 12h",               # 7
    "        residents:",                    # 8
    "          - {id: r-101, name: Wang Lan, lives_alone: true}",  # 9
    "devices:",                              # 10
    "  - id: door-101",                      # 11
    "    kind: door_sensor",                 # 12
    "    board: esp32c3",                    # 13
    "    flat: b1-101",                      # 14
    "    transport: mqtt",                   # 15
    "    heartbeat: 1h",                     # 16
    "timeline:",                             # 17
    "  - at: 10m",                           # 18
    "    device: door-101",                  # 19
    "    action: open",                      # 20
    "  - after: 1m",                         # 21
    "    device: door-101",                  # 22
    "    action: close",                     # 23
    "  - at: 1h",                            # 24
    "    action: hub_restart",               # 25
    "expect:",                               # 26
    "  - alarm: inactivity",                 # 27
    "    flat: b1-101",                      # 28
    "    between: [12h11m, 12h12m]",         # 29
    "  - delivered: door-101",               # 30
    "    count: 2",                          # 31
    "  - rejected: bad_tag",                 # 32
    "    count: 0",                          # 33
]


def variant(changes: dict[int, str | None]) -> str:
    out = []
    for n, line in enumerate(BASE_LINES, start=1):
        if n in changes:
            if changes[n] is not None:
                out.append(changes[n])
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def parse(text: str, name: str = "x.yaml") -> scenario.Scenario:
    return scenario.parse(yamlfile.loads(text, name), boards_loader=boards.load)


def test_base_is_valid() -> None:
    sc = parse(variant({}))
    assert sc.name == "inactivity after an evening"
    assert [(s.at, s.device, s.action) for s in sc.steps] == [
        (600, "door-101", "open"), (660, "door-101", "close"), (3600, None, "hub_restart")]
    assert [s.line for s in sc.steps] == [18, 21, 24]
    assert [(e.kind, e.line) for e in sc.expectations] == [("alarm", 27), ("delivered", 30), ("rejected", 32)]
    assert sc.expectations[0].spec["window"] == (12 * 3600 + 660, 12 * 3600 + 720)
    assert sc.end == 12 * 3600 + 720
    spec = sc.device_specs["door-101"]
    assert spec["board"]["name"] == "esp32c3" and spec["heartbeat_s"] == 3600
    dev = sc.site.devices["door-101"]
    assert len(dev.frame_key) == 32 and len(dev.bind_key) == 16
    assert sc.site.by_address[dev.ble_address] == "door-101"


CASES = [
    # (id, changes, expected line, substrings)
    ("unknown_board", {13: "    board: esp99"}, 13, ["'board'", "esp99", "esp32, esp32c3, pico_w"]),
    ("unknown_kind", {12: "    kind: fridge"}, 12, ["'kind'", "fridge"]),
    ("lock_action_on_a_door_sensor", {20: "    action: card\n    value: wang-card"}, 18,
     ["'card'", "smart_lock", "door_sensor"]),
    ("bolt_on_a_door_sensor", {16: "    heartbeat: 1h\n    bolt: locked"}, 17, ["'bolt'"]),
    ("bad_bolt", {12: "    kind: smart_lock", 16: "    heartbeat: 1h\n    bolt: ajar"}, 17,
     ["'bolt'", "ajar"]),
    ("pin_not_digits", {12: "    kind: smart_lock", 20: "    action: pin\n    value: 12ab"}, 18,
     ["'pin'", "digits"]),
    ("pin_as_a_number", {12: "    kind: smart_lock", 20: "    action: pin\n    value: 1234"}, 18,
     ["'pin'", "quoted"]),
    ("bad_key_turn", {12: "    kind: smart_lock", 20: "    action: key\n    value: half"}, 18,
     ["'key'", "locked or unlocked"]),
    ("tenant_of_nobody", {12: "    kind: smart_lock",
                          20: "    action: tenant_add\n    value: {resident: r-999, card: x}"},
     18, ["'resident'", "r-999"]),
    ("tenant_two_secrets", {12: "    kind: smart_lock",
                            20: "    action: tenant_add\n    value: {resident: r-101, card: x, pin: '1234'}"},
     18, ["exactly one of card, pin, finger"]),
    ("visitor_code_unknown_key", {12: "    kind: smart_lock",
                                  20: "    action: visitor_code\n    value: {name: g, from: 1h, until: 2h, pin: 1}"},
     18, ["'visitor_code'", "{name, from, until, one_time}"]),
    ("visitor_code_backwards", {12: "    kind: smart_lock",
                                20: "    action: visitor_code\n    value: {name: g, from: 2h, until: 1h}"},
     18, ["'visitor_code'", "'until' must be after 'from'"]),
    ("visitor_code_one_time_not_bool", {12: "    kind: smart_lock",
                                        20: "    action: visitor_code\n    value: {name: g, from: 1h, until: 2h, one_time: yes please}"},
     18, ["'one_time'"]),
    ("visitor_without_its_code", {12: "    kind: smart_lock",
                                  20: "    action: visitor\n    value: guest"},
     18, ["'visitor'", "no visitor code 'guest'"]),
    ("visitor_nine_digits", {12: "    kind: smart_lock",
                             20: "    action: visitor\n    value: \"012345678\""},
     18, ["'visitor'", "ten"]),
    ("revoke_without_its_code", {12: "    kind: smart_lock",
                                 20: "    action: visitor_revoke\n    value: guest"},
     18, ["'visitor_revoke'", "no visitor code"]),
    ("bad_initial_door", {16: "    heartbeat: 1h\n    door: ajar"}, 17, ["'door'", "ajar"]),
    ("bad_battery_mv", {16: "    heartbeat: 1h\n    battery_mv: 9000"}, 17, ["'battery_mv'"]),
    ("unknown_action", {20: "    action: dance"}, 20, ["'action'", "dance", "open"]),
    ("unknown_device", {19: "    device: door-999"}, 19, ["'device'", "door-999"]),
    ("action_without_device", {19: None}, 18, ["'device'"]),
    ("device_without_action", {20: None}, 18, ["'device'", "'action'"]),
    ("site_action_with_device", {25: "    device: door-101\n    action: hub_restart"}, 24,
     ["'hub_restart'", "'device'"]),
    ("at_backwards", {24: "  - at: 5m"}, 24, ["'at'", "5m"]),
    ("at_and_after", {21: "  - after: 1m\n    at: 20m"}, 21, ["'at'", "'after'"]),
    ("neither_at_nor_after", {21: "  - wait: 1m"}, 21, ["'at'", "'after'"]),
    ("bad_at_duration", {18: "  - at: 10x"}, 18, ["'at'", "10x"]),
    ("bad_after_duration", {21: "  - after: -1m"}, 21, ["'after'"]),
    ("timeline_entry_not_mapping", {18: "  - open", 19: None, 20: None}, 17, ["timeline"]),
    ("inject_without_value", {20: "    action: inject"}, 18, ["'inject'", "'value'", "forged"]),
    ("inject_bad_value", {20: "    action: inject\n    value: smashed"}, 18, ["'inject'", "'value'"]),
    ("battery_without_value", {20: "    action: battery"}, 18, ["'battery'", "'value'"]),
    ("battery_value_too_high", {20: "    action: battery\n    value: 6000"}, 18, ["'battery'", "'value'"]),
    ("battery_value_string", {20: "    action: battery\n    value: \"3000\""}, 18, ["'value'"]),
    ("expectation_two_kinds", {28: "    no_alarm: inactivity"}, 27, ["exactly one of", "alarm"]),
    ("expectation_no_kind", {27: "  - raised: inactivity"}, 27, ["exactly one of"]),
    ("expectation_not_mapping", {27: "  - alarm", 28: None, 29: None}, 26, ["expect"]),
    ("expectation_unknown_flat", {28: "    flat: b9-999"}, 28, ["'flat'", "b9-999"]),
    ("between_one_item", {29: "    between: [12h]"}, 29, ["'between'"]),
    ("between_not_a_list", {29: "    between: 12h"}, 29, ["'between'"]),
    ("between_three_items", {29: "    between: [1h, 2h, 3h]"}, 29, ["'between'"]),
    ("between_backwards", {29: "    between: [12h, 1h]"}, 29, ["'between'"]),
    ("between_bad_duration", {29: "    between: [12h, 12x]"}, 29, ["'between'", "12x"]),
    ("between_empty_window_end", {29: "    between: [0s, 0s]"}, 29, ["'between'"]),
    ("delivered_without_count", {31: None}, 30, ["'delivered'", "'count'"]),
    ("delivered_count_not_int", {31: "    count: two"}, 30, ["'delivered'", "'count'"]),
    ("delivered_unknown_device", {30: "  - delivered: door-999"}, 30, ["'delivered'", "door-999"]),
    ("rejected_without_count", {33: None}, 32, ["'rejected'", "'count'"]),
    ("watchdog_unknown_device", {30: "  - watchdog: door-999"}, 30, ["'watchdog'", "door-999"]),
    ("watchdog_without_count", {30: "  - watchdog: door-101", 31: None}, 30, ["'watchdog'", "'count'"]),
    ("site_error", {14: "    flat: b9-999"}, 14, ["'flat'", "b9-999"]),
    ("yaml_error", {22: "    device: [door-101"}, 23, ["not valid YAML"]),
    ("duplicate_key", {23: "    device: door-101"}, 23, ["duplicate key 'device'"]),
]


@pytest.mark.parametrize(("changes", "line", "needles"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_scenario_names_file_line_and_key(changes: dict, line: int, needles: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        parse(variant(changes), "scn/x.yaml")
    msg = str(info.value)
    assert msg.startswith(f"scn/x.yaml:{line}:"), msg
    for needle in needles:
        assert needle in msg, (needle, msg)
    assert "\n" not in msg


UNCHECKED = [
    ("alarm_count_not_int", {29: "    between: [12h11m, 12h12m]\n    count: two"}, 27, "'count'"),
    ("rejected_unknown_reason", {32: "  - rejected: bad_tagg"}, 32, "bad_tagg"),
    ("delivered_unknown_type", {31: "    count: 2\n    type: dor"}, 30, "dor"),
]


@pytest.mark.parametrize(("changes", "line", "needle"), [c[1:] for c in UNCHECKED], ids=[c[0] for c in UNCHECKED])
def test_expectation_values_are_validated(changes: dict, line: int, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(variant(changes), "scn/x.yaml")
    assert str(info.value).startswith(f"scn/x.yaml:{line}:"), str(info.value)
    assert needle in str(info.value)


def test_scenario_without_timeline_or_expectations() -> None:
    text = "\n".join(BASE_LINES[:16]) + "\n"
    with pytest.raises(ConfigError, match=r"^x\.yaml: the scenario has no timeline and no expectations"):
        parse(text)


def test_after_accumulates_and_at_is_absolute() -> None:
    sc = parse(variant({21: "  - after: 1h30m", 24: "  - at: 2h"}))
    assert [s.at for s in sc.steps] == [600, 600 + 5400, 7200]


def test_ble_on_board_without_ble_is_refused() -> None:
    def wifi_only(name: str, kind: str) -> dict:
        board = boards.load(name, kind)
        return dict(board, radios=["wifi"])

    text = variant({15: "    transport: ble"})
    with pytest.raises(ConfigError, match=r"^x\.yaml:11: board esp32c3 has no BLE"):
        scenario.parse(yamlfile.loads(text, "x.yaml"), boards_loader=wifi_only)


def test_mqtt_on_board_without_wifi_is_refused() -> None:
    def ble_only(name: str, kind: str) -> dict:
        board = boards.load(name, kind)
        return dict(board, radios=["ble"])

    with pytest.raises(ConfigError, match=r"^x\.yaml:11: board esp32c3 has no Wi-Fi"):
        scenario.parse(yamlfile.loads(variant({}), "x.yaml"), boards_loader=ble_only)


# ---- the command line ---------------------------------------------------------------------

def run_cli(args: list[str], cwd: Path, tmpdir: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, TMPDIR=str(tmpdir), PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([str(ANJU), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


BAD_SCENARIO = variant({20: "    action: dance"})
# the scenario's site part as a site file (`name:` is a scenario's key: a comment keeps the lines)
BAD_SITE = "\n".join(["# site file", *BASE_LINES[1:16]]) + "\n"
BAD_SITE = BAD_SITE.replace("    kind: door_sensor", "    kind: camera") + "    frame_key: \"" + "ab" * 32 + "\"\n"

CLI_CASES = [
    ("sim_check", ["sim", "check"], BAD_SCENARIO, 20, "'action'"),
    ("sim_run", ["sim", "run"], BAD_SCENARIO, 20, "'action'"),
    ("sim_check_bad_board", ["sim", "check"], variant({13: "    board: esp99"}), 13, "'board'"),
    ("sim_run_bad_board", ["sim", "run"], variant({13: "    board: esp99"}), 13, "'board'"),
    ("sim_run_yaml_error", ["sim", "run"], variant({22: "    device: [door-101"}), 23, "not valid YAML"),
    ("config_check", ["config", "check"], BAD_SITE, 12, "'kind'"),
]


@pytest.mark.parametrize(("command", "text", "line", "needle"), [c[1:] for c in CLI_CASES],
                         ids=[c[0] for c in CLI_CASES])
def test_cli_invalid_input_exits_2_with_one_line(tmp_path: Path, command: list[str], text: str, line: int,
                                                 needle: str) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    path = work / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    proc = run_cli([*command, str(path)], work, tmpdir)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"anju: error: {path}:{line}: "), lines[0]
    assert needle in lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert list(tmpdir.iterdir()) == []
    assert sorted(p.name for p in work.iterdir()) == ["bad.yaml"]


def test_cli_config_check_defaults_not_mapping(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text("site: {id: sunrise}\ndefaults: 5\n", encoding="utf-8")
    proc = run_cli(["config", "check", str(path)], tmp_path, tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"anju: error: {path}:2:")


def test_cli_missing_file_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    for command in (["sim", "check"], ["config", "check"]):
        proc = run_cli([*command, str(missing)], tmp_path, tmp_path)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith(f"anju: error: {missing}: cannot read"), proc.stderr
        assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_shipped_scenarios_pass_sim_check(tmp_path: Path, path: Path) -> None:
    proc = run_cli(["sim", "check", str(path)], tmp_path, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"{path}: valid: ")
    assert proc.stderr == ""
    assert list(tmp_path.iterdir()) == []


def test_shipped_scenarios_exist() -> None:
    assert {p.stem for p in SCENARIOS} >= {"demo", "inactivity_basic", "bad_frames"}


RESPONDER_SCENARIO = """name: walking
site: {id: s1, plan: {width: 1000, height: 600}}
buildings:
  - id: b1
    flats: [{id: b1-101}]
devices:
  - {id: door-101, kind: door_sensor, board: esp32c3, flat: b1-101, transport: mqtt}
responders:
  - {id: p-zhang, name: Zhang, kind: police}
timeline:
%s
"""


def responder_steps(timeline):
    sc = scenario.parse(yamlfile.loads(RESPONDER_SCENARIO % timeline, "w.yaml"),
                        boards_loader=boards.load)
    return [(st.at, st.value) for st in sc.steps if st.action == "position"], sc


def test_a_walk_becomes_position_reports_in_time_order() -> None:
    steps, sc = responder_steps(
        "  - {at: 1m, responder: p-zhang, action: position, value: [100, 500]}\n"
        "  - {at: 2m, responder: p-zhang, action: walk, value: {to: {x: 400, y: 200}, over: 3m}}\n"
        "  - {at: 3m, device: door-101, action: open}\n")
    assert steps == [(60.0, {"responder": "p-zhang", "x": 100.0, "y": 500.0}),
                     (180.0, {"responder": "p-zhang", "x": 200.0, "y": 400.0}),
                     (240.0, {"responder": "p-zhang", "x": 300.0, "y": 300.0}),
                     (300.0, {"responder": "p-zhang", "x": 400.0, "y": 200.0})]
    assert [st.at for st in sc.steps] == sorted(st.at for st in sc.steps)
    assert sc.end == 300.0


@pytest.mark.parametrize("step, needle", [
    ("{at: 1m, responder: nobody, action: position, value: [1, 1]}",
     "w.yaml:11: key 'responder': 'nobody' is not a responder of this site; known: p-zhang"),
    ("{at: 1m, responder: p-zhang, action: position, value: [1200, 1]}",
     "is outside the plan (1000 x 600)"),
    ("{at: 1m, responder: p-zhang, action: position, value: {x: 1}}", "key 'value': a point"),
    ("{at: 1m, responder: p-zhang, action: walk, value: {to: [1, 1], over: 1m}}",
     "walks from nowhere"),
    ("{at: 1m, responder: p-zhang, action: open}", "a 'responder' step's action is one of"),
    ("{at: 1m, responder: p-zhang, device: door-101, action: position, value: [1, 1]}",
     "takes 'responder', not 'device'"),
])
def test_responder_steps_are_validated(step: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        responder_steps("  - " + step + "\n")
    assert needle in str(info.value)
