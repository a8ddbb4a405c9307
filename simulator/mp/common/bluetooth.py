"""`bluetooth` of the simulated board (extmod/modbluetooth.c, MicroPython
1.27; the same API on the esp32 port (NimBLE) and on the Pico W (BTstack)).

Advertising goes to the simulator's radio, which delivers the packets a
scanner would hear in the advertising window. Connections (GATT) are not
simulated yet: gatts_register_services and gap_connect raise
NotImplementedError naming the call.
"""
from binascii import hexlify, unhexlify

import _sim

FLAG_BROADCAST = 0x0001
FLAG_READ = 0x0002
FLAG_WRITE_NO_RESPONSE = 0x0004
FLAG_WRITE = 0x0008
FLAG_NOTIFY = 0x0010
FLAG_INDICATE = 0x0020

_ble = None


class UUID:
    def __init__(self, value):
        self._v = value

    def __eq__(self, other):
        return isinstance(other, UUID) and other._v == self._v

    def __repr__(self):
        return "UUID(%r)" % (self._v,)


class BLE:
    def __new__(cls):
        global _ble
        if "ble" not in _sim.boot["board"]["radios"]:
            raise OSError("board has no BLE")
        if _ble is None:  # a singleton, as on the ports
            _ble = object.__new__(cls)
            _ble._active = False
            _ble._adv_since = None
            _ble._irq = None
        return _ble

    def active(self, active=None):
        if active is None:
            return self._active
        if not active:
            self.gap_advertise(None)
        self._active = bool(active)

    def config(self, *names, **kwargs):
        if names == ("mac",):
            return (0, unhexlify(_sim.boot["mac"]))
        if names == ("gap_name",):
            return _sim.boot["device"].encode()
        if kwargs and not names:
            return None
        raise ValueError("unknown config param")

    def irq(self, handler):
        self._irq = handler

    def gap_advertise(self, interval_us, adv_data=None, *, resp_data=None, connectable=True):
        _sim.sync()  # scanners hear it at the device's time
        if interval_us is None:
            if self._adv_since is not None:
                _sim.post({"adv_stop": _sim.now - self._adv_since})
                self._adv_since = None
            return
        if not self._active:
            raise OSError(5)  # EIO: the stack is not active
        if adv_data is None:
            raise ValueError("advertising data required")
        if len(adv_data) > 31:
            raise ValueError("legacy advertising data is at most 31 bytes")
        self._adv_since = _sim.now
        _sim.post({"adv": [hexlify(bytes(adv_data)).decode(), interval_us]})

    def gatts_register_services(self, services):
        raise NotImplementedError("BLE.gatts_register_services is not simulated yet")

    def gap_connect(self, *args, **kwargs):
        raise NotImplementedError("BLE.gap_connect is not simulated yet")
