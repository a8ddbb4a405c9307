"""`bluetooth` of the simulated board (extmod/modbluetooth.c, MicroPython
1.27; the same API on the esp32 port (NimBLE) and on the Pico W (BTstack)).

Advertising goes to the simulator's radio, which delivers the packets a
scanner would hear in the advertising window. The GATT server is the ports'
too: gatts_register_services returns the value handles, a central connected
through the radio writes, reads and subscribes, and the firmware hears it in
its `irq` handler with the real event codes and argument tuples, at the
virtual time the central acted (the event wakes a sleeping board like a pin
interrupt). What the firmware writes, notifies or indicates goes to the host
with its next message. The host keeps a copy of every value, so a central's
read needs no round trip (as with NimBLE, which answers reads itself).

Not simulated: the central role (gap_scan, gap_connect), L2CAP, pairing;
they raise NotImplementedError naming the call.
"""
import errno
from binascii import hexlify, unhexlify

import _sim

FLAG_BROADCAST = 0x0001
FLAG_READ = 0x0002
FLAG_WRITE_NO_RESPONSE = 0x0004
FLAG_WRITE = 0x0008
FLAG_NOTIFY = 0x0010
FLAG_INDICATE = 0x0020

_IRQ_CENTRAL_CONNECT = 1
_IRQ_CENTRAL_DISCONNECT = 2
_IRQ_GATTS_WRITE = 3
_IRQ_GATTS_INDICATE_DONE = 20
_IRQ_MTU_EXCHANGED = 21

_DEFAULT_ATTR_LEN = 20  # MP_BLUETOOTH_DEFAULT_ATTR_LEN
_DEFAULT_MTU = 23
_FIRST_HANDLE = 16  # handles below belong to the GAP and GATT services the stack adds

_ble = None


def _hexval(c):
    if "0" <= c <= "9":
        return ord(c) - 48
    c = c.lower()
    if "a" <= c <= "f":
        return ord(c) - 87
    raise ValueError("invalid char in UUID")


class UUID:
    """16-bit int, 2/4/16 bytes (little-endian, as the stack holds them) or a
    128-bit string; equal only to a UUID of the same type and bytes."""

    def __init__(self, value):
        if isinstance(value, int):
            if value < 0 or value > 65535:
                raise ValueError("invalid UUID")
            self._b = bytes((value & 0xFF, value >> 8))
        elif isinstance(value, UUID):
            self._b = value._b
        elif isinstance(value, str):
            digits = [c for c in value if c != "-"]
            if len(digits) > 32:
                raise ValueError("UUID too long")
            if len(digits) < 32:
                raise ValueError("UUID too short")
            out = bytearray(16)
            for i in range(16):
                out[15 - i] = _hexval(digits[2 * i]) << 4 | _hexval(digits[2 * i + 1])
            self._b = bytes(out)
        else:
            b = bytes(value)
            if len(b) not in (2, 4, 16):
                raise ValueError("invalid UUID")
            self._b = b

    def __eq__(self, other):
        return isinstance(other, UUID) and other._b == self._b

    def __hash__(self):
        return hash(self._b)

    def __bytes__(self):
        return self._b

    def __repr__(self):
        h = hexlify(bytes(reversed(self._b))).decode()
        if len(self._b) <= 4:
            return "UUID(0x%s)" % h
        return "UUID('%s-%s-%s-%s-%s')" % (h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])

    def _host(self):
        """The host's form: the 128-bit string with dashes."""
        if len(self._b) == 16:
            h = hexlify(bytes(reversed(self._b))).decode()
            return "%s-%s-%s-%s-%s" % (h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])
        v = int.from_bytes(self._b, "little")
        return "%08x-0000-1000-8000-00805f9b34fb" % v


def _as_uuid(u):
    if not isinstance(u, UUID):
        raise TypeError("expected UUID")
    return u


class BLE:
    def __new__(cls):
        global _ble
        if "ble" not in _sim.boot["board"]["radios"]:
            raise OSError("board has no BLE")
        if _ble is None:  # a singleton, as on the ports
            _ble = object.__new__(cls)
            _ble._active = False
            _ble._adv_since = None
            _ble._adv_data = None
            _ble._irq = None
            _ble._values = {}    # value handle -> bytes (the local value)
            _ble._cap = {}       # value handle -> the most a client's write keeps
            _ble._append = {}    # value handle -> True: writes append (gatts_set_buffer)
            _ble._conns = {}     # conn handle -> (addr_type, addr)
            _ble._mtu = _DEFAULT_MTU
            _sim.ble = _ble._events
        return _ble

    def active(self, active=None):
        if active is None:
            return self._active
        if not active and self._active:
            self.gap_advertise(None)
            for conn in list(self._conns):
                self.gap_disconnect(conn)
            _sim.post({"gatts": None})  # the stack's services are gone
            self._values = {}
            self._cap = {}
            self._append = {}
        self._active = bool(active)

    def config(self, *names, **kwargs):
        if names == ("mac",):
            return (0, unhexlify(_sim.boot["mac"]))
        if names == ("gap_name",):
            return _sim.boot["device"].encode()
        if names == ("mtu",):
            return self._mtu
        if names:
            raise ValueError("unknown config param")
        if "mtu" in kwargs:
            mtu = kwargs["mtu"]
            if not 23 <= mtu <= 517:
                raise ValueError("invalid mtu")  # NimBLE's range (BLE_ATT_MTU_MAX)
            self._mtu = mtu
            _sim.post({"mtu": mtu})
        return None

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
            adv_data = self._adv_data  # the previous call's data is reused
        if adv_data is None:
            raise ValueError("advertising data required")
        if len(adv_data) > 31:
            raise ValueError("legacy advertising data is at most 31 bytes")
        self._adv_data = bytes(adv_data)
        self._adv_since = _sim.now
        _sim.post({"adv": [hexlify(self._adv_data).decode(), interval_us,
                           1 if connectable else 0]})

    # ---- GATT server -------------------------------------------------------
    def gatts_register_services(self, services):
        if not self._active:
            raise OSError(5)
        if self._adv_since is not None:
            raise OSError(16)  # EBUSY: advertising must be stopped first
        table = []
        result = []
        values = {}
        cap = {}
        handle = _FIRST_HANDLE
        for service in services:
            suuid, chars = service
            handle += 1  # the service declaration
            svc = [_as_uuid(suuid)._host(), handle, []]
            handles = []
            for ch in chars:
                cuuid = _as_uuid(ch[0])
                flags = ch[1]
                handle += 2  # declaration, value
                value_handle = handle
                handles.append(value_handle)
                values[value_handle] = b""
                cap[value_handle] = _DEFAULT_ATTR_LEN
                cccd = 0
                if flags & (FLAG_NOTIFY | FLAG_INDICATE):
                    handle += 1
                    cccd = handle
                descs = []
                for d in (ch[2] if len(ch) > 2 else ()):
                    handle += 1
                    handles.append(handle)
                    values[handle] = b""
                    cap[handle] = _DEFAULT_ATTR_LEN
                    descs.append([_as_uuid(d[0])._host(), handle, d[1]])
                svc[2].append([cuuid._host(), value_handle, flags, cccd, descs])
            table.append(svc)
            result.append(tuple(handles))
        self._values = values
        self._cap = cap
        self._append = {}
        _sim.post({"gatts": table})
        return tuple(result)

    def gatts_read(self, value_handle):
        v = self._values.get(value_handle)
        if v is None:
            raise OSError(22)  # EINVAL: no such handle
        if self._append.get(value_handle):
            self._values[value_handle] = b""  # an append buffer is cleared by reading
        return v

    def gatts_write(self, value_handle, data, send_update=False):
        if value_handle not in self._values:
            raise OSError(22)
        data = bytes(data)
        self._values[value_handle] = data
        if len(data) > self._cap[value_handle]:
            self._cap[value_handle] = len(data)  # a local write grows the buffer
        _sim.post({"gatts_w": [value_handle, hexlify(data).decode(), 1 if send_update else 0]})
        return len(data)

    def gatts_set_buffer(self, value_handle, length, append=False):
        if value_handle not in self._values:
            raise OSError(22)
        self._cap[value_handle] = length
        self._append[value_handle] = bool(append)
        _sim.post({"gatts_buf": [value_handle, length, 1 if append else 0]})

    def _send(self, kind, conn_handle, value_handle, data):
        if conn_handle not in self._conns:
            raise OSError(errno.ENOTCONN)
        if value_handle not in self._values:
            raise OSError(22)
        if data is None:
            data = self._values[value_handle]
        _sim.sync()  # the central hears it at the device's time
        _sim.post({kind: [conn_handle, value_handle, hexlify(bytes(data)).decode()]})

    def gatts_notify(self, conn_handle, value_handle, data=None):
        self._send("gatts_n", conn_handle, value_handle, data)

    def gatts_indicate(self, conn_handle, value_handle, data=None):
        self._send("gatts_i", conn_handle, value_handle, data)

    def gap_disconnect(self, conn_handle):
        if conn_handle not in self._conns:
            return False
        _sim.sync()
        _sim.post({"gap_disc": conn_handle})
        return True  # _IRQ_CENTRAL_DISCONNECT follows when the link is down

    # ---- events from the host (the radio), run as the stack's IRQ ----------
    def _events(self, events):
        for ev in events:
            code = ev[0]
            if code == _IRQ_CENTRAL_CONNECT:
                addr = unhexlify(ev[3])
                self._conns[ev[1]] = (ev[2], addr)
                self._adv_since = None  # the stack stopped advertising (the host took it off)
                self._irq_call(code, (ev[1], ev[2], memoryview(addr)))
            elif code == _IRQ_CENTRAL_DISCONNECT:
                peer = self._conns.pop(ev[1], None)
                if peer is not None:
                    self._irq_call(code, (ev[1], peer[0], memoryview(peer[1])))
            elif code == _IRQ_GATTS_WRITE:
                handle = ev[2]
                data = unhexlify(ev[3])
                if handle in self._values:
                    cap = self._cap[handle]
                    if self._append.get(handle):
                        data = (self._values[handle] + data)[:cap]
                    else:
                        data = data[:cap]
                    self._values[handle] = data
                self._irq_call(code, (ev[1], handle))
            elif code == _IRQ_MTU_EXCHANGED:
                self._irq_call(code, (ev[1], ev[2]))
            elif code == _IRQ_GATTS_INDICATE_DONE:
                self._irq_call(code, (ev[1], ev[2], ev[3]))

    def _irq_call(self, event, data):
        if self._irq is None:
            return
        try:
            self._irq(event, data)
        except Exception as exc:  # as the ports do: printed, the stack goes on
            print("Unhandled exception in IRQ callback handler")
            import sys
            sys.print_exception(exc)

    # ---- the central role is not simulated ---------------------------------
    def gap_connect(self, *args, **kwargs):
        raise NotImplementedError("BLE.gap_connect is not simulated yet")

    def gap_scan(self, *args, **kwargs):
        raise NotImplementedError("BLE.gap_scan is not simulated yet")
