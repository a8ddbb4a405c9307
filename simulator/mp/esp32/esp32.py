"""`esp32` of the esp32 port (modesp32.c, MicroPython 1.27): the deep-sleep
wake sources. ext0 and ext1 exist on the ESP32 only. wake_on_gpio exists on
every chip, takes one level for all its pins, and is checked by
machine.deepsleep(): the ESP32 refuses it there, the C3 takes GPIO0-5.
"""
import _sim
import machine

_C3 = _sim.boot["board"]["mcu"] == "esp32c3"

WAKEUP_ALL_LOW = False
WAKEUP_ANY_HIGH = True


def _pin_id(p):
    return p._id if isinstance(p, machine.Pin) else machine.Pin(p)._id


if not _C3:
    def wake_on_ext0(pin, level):
        pin_id = _pin_id(pin)
        if pin_id not in machine._RTC_PINS:
            raise ValueError("invalid pin")
        machine._wake["ext0"] = [(pin_id, 1 if level else 0)]
        machine._ext0_types[0] = machine.SLEEP | machine.DEEPSLEEP

    def wake_on_ext1(pins, level):
        ids = [_pin_id(p) for p in pins]
        for pin_id in ids:
            if pin_id not in machine._RTC_PINS:
                raise ValueError("invalid pin")
        if not level:
            raise NotImplementedError("wake_on_ext1(level=WAKEUP_ALL_LOW) is not simulated")
        machine._wake["ext1"] = [(pin_id, 1) for pin_id in ids]


def wake_on_gpio(pins=None, level=None):
    """One level for every pin; the pins are checked by machine.deepsleep()
    (modmachine.c), where the ESP32 refuses gpio wake from deep sleep."""
    old = machine._wake.get("gpio", [])
    if level is None:
        level = old[0][1] if old else 0
    ids = [_pin_id(p) for p in pins] if pins is not None else [w[0] for w in old]
    machine._wake["gpio"] = [(pin_id, 1 if level else 0) for pin_id in ids]


def raw_temperature():
    return 120
