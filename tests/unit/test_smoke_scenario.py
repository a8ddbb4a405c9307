"""Scenario and board validation for smoke sensors: every bad input is
refused with the file, the line and the key named."""
import copy
import json

import pytest

from hub import ConfigError
from host_tools import boards
from simulator import scenario as scn

BASE = """name: t
site: {id: s1, name: S}
buildings:
  - id: b1
    flats:
      - id: f1
devices:
  - {id: sm1, kind: smoke_sensor, board: esp32, flat: f1, transport: mqtt}
timeline:
%s
expect:
%s
"""


def _load(tmp_path, timeline, expect="  - no_alarm: smoke"):
    p = tmp_path / "s.yaml"
    p.write_text(BASE % (timeline, expect))
    return scn.load(str(p), boards_loader=lambda n, k: boards.load(n, k))


def test_valid_smoke_scenario_loads(tmp_path):
    sc = _load(tmp_path, "  - at: 1m\n    device: sm1\n    action: smoke\n"
                         "    value: {profile: steam, duration: 2}",
               "  - siren: sm1\n    between: [1m, 2m]")
    assert sc.steps[0].value == {"profile": "steam", "duration": 2}
    assert sc.device_specs["sm1"]["kind"] == "smoke_sensor"


@pytest.mark.parametrize("timeline,expect,message", [
    ("  - at: 1m\n    device: sm1\n    action: smoke\n    value: {profile: fog}", None,
     "action 'smoke' needs 'value'"),
    ("  - at: 1m\n    device: sm1\n    action: smoke\n    value: {profile: steam, colour: 2}",
     None, "no parameter 'colour'"),
    ("  - at: 1m\n    device: sm1\n    action: dust\n    value: lots", None,
     "action 'dust' needs 'value'"),
    ("  - at: 1m", "  - siren: sm1", "needs 'between"),
    ("  - at: 1m", "  - silent: nobody\n    between: [0s, 1m]", "no device 'nobody'"),
])
def test_bad_smoke_steps_are_refused_with_line(tmp_path, timeline, expect, message):
    with pytest.raises(ConfigError, match=message) as exc:
        _load(tmp_path, timeline, expect or "  - no_alarm: smoke")
    assert "s.yaml" in str(exc.value) and ":" in str(exc.value)


@pytest.mark.parametrize("pin", ["ir_led", "photodiode_adc", "siren", "test_button"])
def test_board_without_a_smoke_pin_is_refused_for_smoke_sensor(tmp_path, pin):
    board = copy.deepcopy(boards.load("esp32"))
    del board["pins"][pin]
    p = tmp_path / "b.json"
    p.write_text(json.dumps(board))
    boards.load(str(p), "door_sensor")  # the door sensor does not need it
    with pytest.raises(boards.BoardError, match="pins.%s.*required by smoke_sensor" % pin):
        boards.load(str(p), "smoke_sensor")
