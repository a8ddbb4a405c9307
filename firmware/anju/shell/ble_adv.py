"""BLE advertising for battery sensors (BTHome v2, non-connectable)."""
import time

import bluetooth

_ble = None


def radio():
    global _ble
    if _ble is None:
        _ble = bluetooth.BLE()
    _ble.active(True)
    return _ble


def mac():
    """The public address as 6 bytes, in printed order."""
    return bytes(radio().config("mac")[1])


def burst(adv_data, interval_ms, window_ms):
    """Advertise `adv_data` for `window_ms`, repeating every `interval_ms`."""
    ble = radio()
    ble.gap_advertise(interval_ms * 1000, adv_data=adv_data, connectable=False)
    time.sleep_ms(window_ms)
    ble.gap_advertise(None)
    ble.active(False)
