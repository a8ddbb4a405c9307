"""Board descriptions (boards/*.json): load and validate.

Boards are data. Errors name the board file, the field and the allowed values,
so a typo fails at deploy time and not on a device in a flat.
"""
import json
from pathlib import Path

BOARDS_DIR = Path(__file__).resolve().parent.parent / "boards"

RADIOS = ("ble", "wifi")
PORTS = ("esp32", "rp2")
PIN_WAKE = ("ext0", "gpio", "none")
REQUIRED_PINS = {"door_sensor": ("reed", "tamper", "battery_adc"),
                 "smoke_sensor": ("ir_led", "photodiode_adc", "siren", "test_button", "battery_adc"),
                 # the lock's optional inputs (keypad, RFID, fingerprint) start only
                 # where the board names their pins (docs/smart_lock.md)
                 "smart_lock": ("motor_a", "motor_b", "bolt_locked", "bolt_unlocked", "motor_adc",
                                "reed", "handle", "tamper", "battery_adc")}
LIST_PINS = ("kp_rows", "kp_cols")


class BoardError(ValueError):
    pass


def names():
    return sorted(p.stem for p in BOARDS_DIR.glob("*.json"))


def load(name, kind=None, boards_dir=None):
    """Load and validate board `name` (a name in boards/ or a path to a .json)."""
    base = Path(boards_dir) if boards_dir else BOARDS_DIR
    path = Path(name) if str(name).endswith(".json") else base / (str(name) + ".json")
    if not path.is_file():
        raise BoardError("unknown board '%s'; known boards: %s" % (name, ", ".join(names())))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BoardError("%s: line %d: %s" % (path, exc.lineno, exc.msg)) from exc
    validate(data, str(path), kind)
    return data


def _number(v, kinds):
    return isinstance(v, kinds) and not isinstance(v, bool)


def _err(where, field, msg):
    raise BoardError("%s: field '%s': %s" % (where, field, msg))


def validate(b, where, kind=None):
    if not isinstance(b, dict):
        raise BoardError("%s: must be a JSON object" % where)
    for field in ("name", "title", "mcu", "port", "radios", "pins", "adc", "sleep", "power"):
        if field not in b:
            _err(where, field, "missing")
    if b["port"] not in PORTS:
        _err(where, "port", "'%s' is not one of %s" % (b["port"], ", ".join(PORTS)))
    if not isinstance(b["radios"], list) or not b["radios"]:
        _err(where, "radios", "a non-empty list of %s" % ", ".join(RADIOS))
    for r in b["radios"]:
        if r not in RADIOS:
            _err(where, "radios", "'%s' is not one of %s" % (r, ", ".join(RADIOS)))
    sleep = b["sleep"]
    if not isinstance(sleep, dict):
        _err(where, "sleep", "must be an object")
    if sleep.get("pin_wake") not in PIN_WAKE:
        _err(where, "sleep.pin_wake", "'%s' is not one of %s" % (sleep.get("pin_wake"), ", ".join(PIN_WAKE)))
    if not isinstance(sleep.get("deep"), bool):
        _err(where, "sleep.deep", "must be true or false")
    if sleep["pin_wake"] != "none" and not sleep["deep"]:
        _err(where, "sleep.pin_wake", "pin wake from deep sleep needs sleep.deep true")
    rtc = sleep.get("rtc_memory_bytes")
    if not _number(rtc, int) or rtc < 0:
        _err(where, "sleep.rtc_memory_bytes", "must be an integer >= 0")
    for f in ("adc", "power"):
        if not isinstance(b[f], dict):
            _err(where, f, "must be an object")
    adc = b["adc"]
    for f in ("full_scale_mv", "divider_x100"):
        if not _number(adc.get(f), int) or adc[f] <= 0:
            _err(where, "adc." + f, "must be a positive integer")
    pins = b["pins"]
    if not isinstance(pins, dict):
        _err(where, "pins", "must be an object of name -> GPIO number")
    for k, v in pins.items():
        if k in LIST_PINS:
            if not (isinstance(v, list) and len(v) == 4
                    and all(_number(x, int) and 0 <= x < 64 for x in v)):
                _err(where, "pins." + k, "must be a list of 4 GPIO numbers 0..63")
            continue
        if not (_number(v, int) and 0 <= v < 64) and not isinstance(v, str):
            _err(where, "pins." + k, "must be a GPIO number 0..63 or a pin name")
    if kind is not None:
        for p in REQUIRED_PINS.get(kind, ()):
            if p not in pins:
                _err(where, "pins." + p, "required by %s" % kind)
        if kind == "door_sensor" and sleep["pin_wake"] in ("ext0", "gpio"):
            rtc_pins = b.get("rtc_pins", [])
            if pins["reed"] not in rtc_pins:
                _err(where, "pins.reed", "GPIO %s cannot wake the chip from deep sleep; use one of %s"
                     % (pins["reed"], rtc_pins))
    flash = b.get("flash")
    if flash is not None:
        if not isinstance(flash, dict):
            _err(where, "flash", "must be an object")
        for f in ("size_bytes", "fs_bytes", "block_size"):
            if f in flash and (not _number(flash[f], int) or flash[f] <= 0):
                _err(where, "flash." + f, "must be a positive integer")
        if "size_bytes" in flash and flash.get("fs_bytes", 0) >= flash["size_bytes"]:
            _err(where, "flash.fs_bytes", "must be less than flash.size_bytes (%d)"
                 % flash["size_bytes"])
    for f, v in b["power"].items():
        if f != "source" and (not _number(v, (int, float)) or v < 0):
            _err(where, "power." + f, "must be a number >= 0")
    return b
