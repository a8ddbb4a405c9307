"""Board descriptions (host_tools.boards): every shipped board loads, and every
invalid field is refused with a message naming the board file and the field."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from host_tools import boards

SHIPPED = sorted(p.stem for p in boards.BOARDS_DIR.glob("*.json"))


def esp32() -> dict:
    return json.loads((boards.BOARDS_DIR / "esp32.json").read_text(encoding="utf-8"))


def pico_w() -> dict:
    return json.loads((boards.BOARDS_DIR / "pico_w.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_board_loads_for_door_sensor(name: str) -> None:
    b = boards.load(name, "door_sensor")
    assert b["name"] == name
    assert set(b["radios"]) <= {"ble", "wifi"} and b["radios"]
    for pin in ("reed", "tamper", "battery_adc"):
        assert pin in b["pins"]


def test_shipped_boards_are_the_known_ones() -> None:
    assert boards.names() == SHIPPED
    assert {"esp32", "esp32c3", "pico_w"} <= set(SHIPPED)


def test_load_by_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(esp32()), encoding="utf-8")
    assert boards.load(str(path))["name"] == "esp32"


def test_load_from_another_directory(tmp_path: Path) -> None:
    (tmp_path / "custom.json").write_text(json.dumps(pico_w()), encoding="utf-8")
    assert boards.load("custom", "door_sensor", boards_dir=tmp_path)["port"] == "rp2"


@pytest.mark.parametrize("name", ["esp8266", "ESP32", "", "esp32c3 "])
def test_unknown_board_lists_known_ones(name: str) -> None:
    with pytest.raises(boards.BoardError) as info:
        boards.load(name)
    msg = str(info.value)
    assert f"unknown board '{name}'" in msg
    assert "known boards: " + ", ".join(SHIPPED) in msg


def test_board_error_is_a_value_error() -> None:
    assert issubclass(boards.BoardError, ValueError)


def test_invalid_json_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "name": "broken",\n  "port": esp32\n}\n', encoding="utf-8")
    with pytest.raises(boards.BoardError) as info:
        boards.load(str(path))
    assert str(info.value).startswith(f"{path}: line 3: ")


def test_load_validates(tmp_path: Path) -> None:
    b = esp32()
    b["port"] = "stm32"
    (tmp_path / "bad.json").write_text(json.dumps(b), encoding="utf-8")
    with pytest.raises(boards.BoardError) as info:
        boards.load("bad", boards_dir=tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 'bad.json'}: field 'port': ")


def _set(path: str, value):
    def mutate(b: dict) -> None:
        node = b
        keys = path.split(".")
        for k in keys[:-1]:
            node = node[k]
        if value is _DELETE:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value
    return mutate


_DELETE = object()

# (id, base board, mutation, kind, field named in the message, extra substring)
FIELD_CASES = [
    ("missing_name", esp32, _set("name", _DELETE), None, "name", "missing"),
    ("missing_mcu", esp32, _set("mcu", _DELETE), None, "mcu", "missing"),
    ("missing_power", esp32, _set("power", _DELETE), None, "power", "missing"),
    ("port_unknown", esp32, _set("port", "stm32"), None, "port", "esp32, rp2"),
    ("port_wrong_case", esp32, _set("port", "ESP32"), None, "port", "ESP32"),
    ("radios_empty", esp32, _set("radios", []), None, "radios", "non-empty list"),
    ("radios_string", esp32, _set("radios", "wifi"), None, "radios", "list"),
    ("radios_unknown", esp32, _set("radios", ["wifi", "zigbee"]), None, "radios", "zigbee"),
    ("sleep_not_object", esp32, _set("sleep", True), None, "sleep", "object"),
    ("pin_wake_unknown", esp32, _set("sleep.pin_wake", "ext1"), None, "sleep.pin_wake", "ext1"),
    ("pin_wake_missing", esp32, _set("sleep.pin_wake", _DELETE), None, "sleep.pin_wake", "ext0"),
    ("pin_wake_without_deep", esp32, _set("sleep.deep", False), None, "sleep.pin_wake", "sleep.deep"),
    ("deep_not_bool", esp32, _set("sleep.deep", "yes"), None, "sleep.deep", "true or false"),
    ("deep_missing", pico_w, _set("sleep.deep", _DELETE), None, "sleep.deep", "true or false"),
    ("rtc_memory_negative", esp32, _set("sleep.rtc_memory_bytes", -1), None, "sleep.rtc_memory_bytes", ">= 0"),
    ("rtc_memory_float", esp32, _set("sleep.rtc_memory_bytes", 2048.0), None, "sleep.rtc_memory_bytes", ""),
    ("rtc_memory_missing", esp32, _set("sleep.rtc_memory_bytes", _DELETE), None, "sleep.rtc_memory_bytes", ""),
    ("adc_full_scale_zero", esp32, _set("adc.full_scale_mv", 0), None, "adc.full_scale_mv", "positive"),
    ("adc_full_scale_string", esp32, _set("adc.full_scale_mv", "3300"), None, "adc.full_scale_mv", ""),
    ("adc_divider_negative", esp32, _set("adc.divider_x100", -200), None, "adc.divider_x100", "positive"),
    ("adc_divider_missing", esp32, _set("adc.divider_x100", _DELETE), None, "adc.divider_x100", ""),
    ("pins_not_object", esp32, _set("pins", [33, 32]), None, "pins", "object"),
    ("pin_too_high", esp32, _set("pins.led", 64), None, "pins.led", "0..63"),
    ("pin_negative", esp32, _set("pins.reed", -1), None, "pins.reed", "0..63"),
    ("pin_float", esp32, _set("pins.tamper", 3.5), None, "pins.tamper", ""),
    ("pin_list", esp32, _set("pins.tamper", [3]), None, "pins.tamper", ""),
    ("reed_missing_for_door", esp32, _set("pins.reed", _DELETE), "door_sensor", "pins.reed", "door_sensor"),
    ("tamper_missing_for_door", esp32, _set("pins.tamper", _DELETE), "door_sensor", "pins.tamper", "door_sensor"),
    ("adc_pin_missing_for_door", pico_w, _set("pins.battery_adc", _DELETE), "door_sensor",
     "pins.battery_adc", "door_sensor"),
    ("reed_not_rtc_capable", esp32, _set("pins.reed", 5), "door_sensor", "pins.reed", "GPIO 5"),
    ("reed_not_rtc_no_list", esp32, _set("rtc_pins", _DELETE), "door_sensor", "pins.reed", "deep sleep"),
    ("power_negative", esp32, _set("power.active_ma", -1), None, "power.active_ma", ">= 0"),
    ("power_string", esp32, _set("power.deep_sleep_ua", "10"), None, "power.deep_sleep_ua", ">= 0"),
    ("power_null", pico_w, _set("power.wifi_tx_ma", None), None, "power.wifi_tx_ma", ""),
]


@pytest.mark.parametrize(("base", "mutate", "kind", "field", "extra"), [c[1:] for c in FIELD_CASES],
                         ids=[c[0] for c in FIELD_CASES])
def test_invalid_field_names_file_and_field(base, mutate, kind, field: str, extra: str) -> None:
    b = base()
    mutate(b)
    with pytest.raises(boards.BoardError) as info:
        boards.validate(b, "boards/x.json", kind)
    msg = str(info.value)
    assert msg.startswith(f"boards/x.json: field '{field}': "), msg
    assert extra in msg


def test_board_not_an_object() -> None:
    for value in ([], "esp32", None, 3):
        with pytest.raises(boards.BoardError, match=r"^boards/x\.json: must be a JSON object"):
            boards.validate(value, "boards/x.json")


def test_required_pins_only_checked_for_a_kind() -> None:
    b = esp32()
    del b["pins"]["reed"]
    assert boards.validate(b, "boards/x.json") is b
    assert boards.validate(b, "boards/x.json", "smoke_sensor") is b
    with pytest.raises(boards.BoardError, match="pins.reed.*required by smart_lock"):
        boards.validate(b, "boards/x.json", "smart_lock")


def test_every_board_wires_a_smart_lock_and_the_keypad_as_lists() -> None:
    for name in boards.names():
        b = boards.load(name, "smart_lock")
        for key in ("kp_rows", "kp_cols"):
            if key in b["pins"]:
                assert len(b["pins"][key]) == 4
    b = esp32()
    b["pins"]["kp_rows"] = [16, 17, 21]
    with pytest.raises(boards.BoardError, match="kp_rows.*list of 4"):
        boards.validate(b, "boards/x.json")
    b["pins"]["kp_rows"] = 16
    with pytest.raises(boards.BoardError, match="kp_rows"):
        boards.validate(b, "boards/x.json")


def test_reed_pin_check_skipped_without_pin_wake() -> None:
    # the Pico W light-sleeps: no RTC-capable reed pin is needed
    b = pico_w()
    assert b["rtc_pins"] == [] and b["sleep"]["pin_wake"] == "none"
    assert boards.validate(b, "boards/pico_w.json", "door_sensor") is b


def test_pin_names_are_accepted() -> None:
    b = esp32()
    b["pins"]["led"] = "LED"
    assert boards.validate(b, "boards/x.json", "door_sensor")["pins"]["led"] == "LED"


def test_power_source_is_free_text() -> None:
    b = copy.deepcopy(esp32())
    b["power"]["source"] = "measured on the bench"
    assert boards.validate(b, "boards/x.json") is b


@pytest.mark.parametrize("field", ["adc", "power"])
def test_adc_and_power_must_be_objects(field: str) -> None:
    b = esp32()
    b[field] = 5
    with pytest.raises(boards.BoardError, match=rf"^boards/x\.json: field '{field}': "):
        boards.validate(b, "boards/x.json")
