"""MicroPython hardware modules for one simulated device.

`build(device)` returns the modules the firmware may import: `machine`,
`time` (the virtual clock), `network`, `bluetooth`, `esp32`, `micropython`,
`gc`, `os` (rooted in the device's flash folder) and `socket` (the host's real
sockets below a simulated link, so the firmware's own MQTT client talks to a
real broker). `machine`, `esp32` and `network` follow the board's port and
chip (simulator/ports.py): what a port lacks is missing here too. They follow
MicroPython's documented APIs at the lowest public level, so the firmware
above them is the code that runs on a chip. What a shim cannot model raises NotImplementedError naming the call.
"""
import os as _os
import time as _time
import types

from simulator import ports
from simulator.clock import MP_EPOCH_OFFSET


def _module(name, **attrs):
    m = types.ModuleType(name)
    for k, v in attrs.items():
        setattr(m, k, v)
    return m


def build(dev):
    from simulator import device as D

    # ---- machine --------------------------------------------------------
    port, chip = ports.of(dev.board)
    P = port["pin"]
    # the port's trigger bits -> the simulator's edge flags
    edges = {P["IRQ_RISING"]: D.SimDevice.RISING, P["IRQ_FALLING"]: D.SimDevice.FALLING}
    wake_levels = {P.get("WAKE_LOW"): 0, P.get("WAKE_HIGH"): 1} if "WAKE_LOW" in P else {}

    class Pin:
        def __init__(self, pin_id, mode=-1, pull=-1, value=None):
            self._p = dev.pin(pin_id)
            self._p.shim = self
            self.init(mode, pull, value)

        def init(self, mode=-1, pull=-1, value=None):
            if mode != -1:
                self._p.mode = mode
            if pull != -1:
                self._p.pull = pull
            if value is not None:
                self._p.level = 1 if value else 0

        def value(self, v=None):
            if v is None:
                return self._p.level
            self._p.level = 1 if v else 0
            return None

        def on(self):
            self.value(1)

        def off(self):
            self.value(0)

        def __call__(self, v=None):
            return self.value(v)

        def _irq(self, handler, trigger):
            self._p.handler = handler
            flags = 0
            for bit, flag in edges.items():
                if trigger & bit:
                    flags |= flag
            self._p.trigger = flags

        def _irq_esp32(self, handler=None, trigger=P["IRQ_RISING"] | P["IRQ_FALLING"], wake=None):
            # ports/esp32/machine_pin.c: a level trigger with `wake` configures
            # ext0 (ESP32 only; accepted and ignored on the C3, after the pin check)
            if wake is not None and trigger in wake_levels:
                if not isinstance(wake, int) or not 2 <= wake <= 7:
                    raise ValueError("bad wake value")
                if self._p.id not in ports.ESP32_RTC_PINS:
                    raise ValueError("invalid pin for wake")
                if chip["ext0"] and wake & DEEPSLEEP:
                    dev.deep_wake[:] = [w for w in dev.deep_wake if w[2] != "ext0"]
                    dev.deep_wake.append((self._p.id, wake_levels[trigger], "ext0"))
                return None
            self._irq(handler, trigger)
            return None

        def _irq_rp2(self, handler=None, trigger=P["IRQ_RISING"] | P["IRQ_FALLING"], hard=False):
            self._irq(handler, trigger)
            return None

        irq = _irq_esp32 if port["irq_wake"] else _irq_rp2

        def __repr__(self):
            return "Pin(%s)" % self._p.id

    for _name, _value in P.items():
        setattr(Pin, _name, _value)

    class ADC:
        ATTN_0DB = 0
        ATTN_11DB = 3

        def __init__(self, pin, atten=None):
            self._id = pin._p.id if isinstance(pin, Pin) else pin
            if self._id not in chip["adc_pins"]:
                raise ValueError("Pin doesn't have ADC capabilities" if port is ports.PORTS["rp2"]
                                 else "invalid pin")

        def read_u16(self):
            source = dev.adc_source.get(self._id)
            if source is not None:
                return max(0, min(65535, int(source(dev))))
            full = dev.board["adc"]["full_scale_mv"]
            div = dev.board["adc"]["divider_x100"] / 100.0
            mv = dev.adc_mv.get(self._id, 0) / div
            return max(0, min(65535, int(round(mv * 65535 / full))))

        def read_uv(self):
            return int(self.read_u16() * dev.board["adc"]["full_scale_mv"] * 1000 / 65535)

    class RTC:
        def __init__(self, *args):
            pass

        def memory(self, data=None):
            if data is None:
                return dev.rtc_memory
            if len(data) > dev.board["sleep"].get("rtc_memory_bytes", 2048):
                raise ValueError("RTC memory is %d bytes" % dev.board["sleep"]["rtc_memory_bytes"])
            dev.rtc_memory = bytes(data)
            return None

        def datetime(self, *args):
            raise NotImplementedError("machine.RTC.datetime is not simulated")

    if not dev.board["sleep"].get("rtc_memory_bytes"):
        del RTC.memory  # boards without RTC memory (rp2) have no such method

    class WDT:
        def __init__(self, id=0, timeout=5000):
            self.timeout = timeout

        def feed(self):
            pass

    class PWM:
        def __init__(self, pin, freq=0, duty_u16=0):
            self._id = pin._p.id
            self._freq = freq
            self._duty = None
            self.duty_u16(duty_u16)

        def freq(self, f=None):
            if f is None:
                return self._freq
            self._freq = f
            return None

        def duty_u16(self, d=None):
            if d is None:
                return self._duty
            if d != self._duty:
                self._duty = d
                dev.pwm_log.setdefault(self._id, []).append((dev.now(), d))
                if dev.on_pwm is not None:
                    dev.on_pwm(self._id, d)
            return None

        def deinit(self):
            self.duty_u16(0)

    class Timer:
        ONE_SHOT = 0
        PERIODIC = 1

        def __init__(self, id=-1, **kwargs):
            if id not in chip["timer_ids"]:
                raise ValueError("Timer doesn't exist" if -1 in chip["timer_ids"]
                                 else "invalid Timer number")
            self.due = None
            self._period = 0
            self._mode = Timer.ONE_SHOT
            self._cb = None
            dev.timers.append(self)
            if kwargs:
                self.init(**kwargs)

        def init(self, mode=PERIODIC, period=-1, callback=None, freq=-1):
            if freq > 0:
                period = 1000.0 / freq
            if period <= 0:
                raise ValueError("Timer period must be positive")
            self._mode = mode
            self._period = period / 1000.0
            self._cb = callback
            self.due = dev.now() + self._period

        def deinit(self):
            self.due = None

        def fire(self):
            at = self.due
            self.due = at + self._period if self._mode == Timer.PERIODIC else None
            if self._cb is not None:
                self._cb(self)

    DEEPSLEEP = port["machine"].get("DEEPSLEEP")

    def deepsleep(ms=0):
        if not dev.board["sleep"]["deep"]:
            raise NotImplementedError("machine.deepsleep on board %s (the rp2 port light-sleeps "
                                      "and resets; not simulated)" % dev.board["name"])
        gpio = [w for w in dev.deep_wake if w[2] == "gpio"]
        if gpio and not chip["gpio_deep_wake"]:
            raise ValueError("DEEPSLEEP with gpio pins not supported on this chip")
        if any(w[0] not in chip.get("gpio_wake_pins", ()) for w in gpio):
            raise ValueError("wake-up pin not supported")
        dev.deepsleep(ms)

    def lightsleep(ms=0):
        limit = port["lightsleep_max_ms"]
        if limit is not None and ms > limit:
            raise ValueError("sleep too long")
        dev.lightsleep(ms)

    def unique_id():
        return bytes(dev.mac)

    def reset():
        raise NotImplementedError("machine.reset: use the simulator's reboot")

    causes = {getattr(D, name): value for name, value in port["reset"].items()}

    def reset_cause():
        return causes.get(dev.reset_cause, port["reset"]["PWRON_RESET"])

    machine = _module(
        "machine", Pin=Pin, ADC=ADC, RTC=RTC, WDT=WDT, PWM=PWM, Timer=Timer,
        deepsleep=deepsleep, lightsleep=lightsleep, unique_id=unique_id, reset=reset,
        reset_cause=reset_cause, idle=lambda: None, freq=lambda *a: 160000000,
        **port["reset"], **port["machine"])

    # ---- esp32 ----------------------------------------------------------
    def wake_on_ext0(pin, level):
        if pin._p.id not in ports.ESP32_RTC_PINS:
            raise ValueError("invalid pin")
        dev.deep_wake[:] = [w for w in dev.deep_wake if w[2] != "ext0"]
        dev.deep_wake.append((pin._p.id, 1 if level else 0, "ext0"))

    def wake_on_ext1(pins, level):
        if not level:
            raise NotImplementedError("esp32.wake_on_ext1(level=WAKEUP_ALL_LOW) is not simulated")
        dev.deep_wake[:] = [w for w in dev.deep_wake if w[2] != "ext1"]
        for p in pins:
            dev.deep_wake.append((p._p.id, 1, "ext1"))

    def wake_on_gpio(pins, level):
        # one level for every pin; checked against the chip at deepsleep()
        dev.deep_wake[:] = [w for w in dev.deep_wake if w[2] != "gpio"]
        for p in pins:
            dev.deep_wake.append((p._p.id, 1 if level else 0, "gpio"))

    esp32_attrs = {"wake_on_gpio": wake_on_gpio, "WAKEUP_ALL_LOW": False, "WAKEUP_ANY_HIGH": True}
    if chip["ext0"]:
        esp32_attrs["wake_on_ext0"] = wake_on_ext0
    if chip["ext1"]:
        esp32_attrs["wake_on_ext1"] = wake_on_ext1
    esp32 = _module("esp32", **esp32_attrs)

    # ---- time -----------------------------------------------------------
    def ticks_ms():
        return int(dev.now() * 1000) & 0x3FFFFFFF

    def ticks_us():
        return int(dev.now() * 1_000_000) & 0x3FFFFFFF

    def ticks_diff(a, b):
        d = (a - b) & 0x3FFFFFFF
        return d - 0x40000000 if d & 0x20000000 else d

    def ticks_add(a, delta):
        return (a + delta) & 0x3FFFFFFF

    def mp_time():
        return int(dev.now()) - MP_EPOCH_OFFSET

    def gmtime(secs=None):
        t = mp_time() if secs is None else secs
        return _time.gmtime(t + MP_EPOCH_OFFSET)[:8]

    time_mod = _module(
        "time", time=mp_time, time_ns=lambda: int(dev.now() * 1e9) - MP_EPOCH_OFFSET * 10**9,
        ticks_ms=ticks_ms, ticks_us=ticks_us, ticks_cpu=ticks_us, ticks_diff=ticks_diff,
        ticks_add=ticks_add, sleep_ms=dev.sleep_ms, sleep_us=lambda us: dev.sleep_ms(us / 1000.0) if us >= 1000 else None,
        sleep=lambda s: dev.sleep_ms(s * 1000), gmtime=gmtime, localtime=gmtime,
        mktime=lambda tup: int(_time.mktime(tuple(tup[:8]) + (0,))) - MP_EPOCH_OFFSET,
    )

    # ---- network ---------------------------------------------------------
    ST = port["wlan_status"]
    WIFI_SCAN_S = 2.0  # an all-channel scan, ESP-IDF's default (about 120 ms x 13 channels + margin)

    class WLAN:
        def __init__(self, interface=0):
            if "wifi" not in dev.board["radios"]:
                raise OSError("board %s has no Wi-Fi" % dev.board["name"])
            self._active = False
            self._connected = False
            self._tried = False

        def active(self, on=None):
            if on is None:
                return self._active
            on = bool(on)
            if on and not self._active:
                dev.wifi_radio(True)
            elif self._active and not on:
                dev.wifi_radio(False)
                self._connected = False
                self._tried = False
            self._active = on
            return None

        def connect(self, ssid=None, key=None, *, bssid=None):
            if not self._active:
                raise OSError("WLAN not active")
            self._tried = dev.now()
            dev.wifi_connects += 1
            self._connected = dev.wifi_ok and ssid == dev.sim.wifi_ssid

        def disconnect(self):
            self._connected = False

        def isconnected(self):
            return self._connected and dev.wifi_ok

        def status(self, *args):
            if args:
                raise NotImplementedError("WLAN.status(%r) is not simulated" % (args,))
            if self.isconnected():
                return ST["STAT_GOT_IP"]
            if self._tried is not False and not dev.wifi_ok:
                # a station scans all channels before it reports no access point
                if dev.now() - self._tried < WIFI_SCAN_S:
                    return ST["STAT_CONNECTING"]
                return ST["STAT_NO_AP_FOUND"]
            return ST["STAT_IDLE"]

        def ifconfig(self, *args):
            return ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")

        def config(self, *args, **kwargs):
            if args == ("mac",):
                return bytes(dev.mac)
            return None

    network = _module("network", WLAN=WLAN, STA_IF=0, AP_IF=1, **ST)

    # ---- bluetooth --------------------------------------------------------
    class BLE:
        _inst = None

        def __new__(cls):
            if cls._inst is None:
                cls._inst = object.__new__(cls)
                cls._inst._active = False
                cls._inst._adv_since = None
            return cls._inst

        def __init__(self):
            if "ble" not in dev.board["radios"]:
                raise OSError("board %s has no BLE" % dev.board["name"])

        def active(self, on=None):
            if on is None:
                return self._active
            if not on:
                self.gap_advertise(None)
            self._active = bool(on)
            return None

        def config(self, *names, **kwargs):
            if names == ("mac",):
                return (0, bytes(dev.mac))
            if kwargs:
                return None
            raise ValueError("unsupported BLE config %r" % (names,))

        def irq(self, handler):
            self._irq = handler

        def gap_advertise(self, interval_us, adv_data=None, resp_data=None, connectable=True):
            if not self._active and interval_us is not None:
                raise OSError("BLE not active")
            if interval_us is None:
                if self._adv_since is not None:
                    dev.sim.radio_stop(dev, dev.now() - self._adv_since)
                    self._adv_since = None
                return
            if adv_data is None:
                raise ValueError("advertising data required")
            if len(adv_data) > 31:
                raise ValueError("legacy advertising data is at most 31 bytes")
            self._adv_since = dev.now()
            dev.sim.radio_start(dev, bytes(adv_data), interval_us)

    bluetooth = _module("bluetooth", BLE=BLE, UUID=lambda v: v, FLAG_READ=0x02,
                        FLAG_WRITE=0x08, FLAG_NOTIFY=0x10)

    # ---- os / files ------------------------------------------------------
    root = dev.fs_root

    def _p(path):
        path = str(path)
        if not path.startswith("/"):
            path = "/" + path
        norm = _os.path.normpath(path)
        return _os.path.join(root, norm.lstrip("/"))

    def _open(path, mode="r", *args, **kwargs):
        return open(_p(path), mode, *args, **kwargs)

    def stat(path):
        st = _os.stat(_p(path))
        return (0o100000 if _os.path.isfile(_p(path)) else 0o040000, 0, 0, 0, 0, 0,
                st.st_size, 0, 0, 0)

    os_mod = _module(
        "os", listdir=lambda path="/": sorted(_os.listdir(_p(path))),
        mkdir=lambda path: _os.mkdir(_p(path)), remove=lambda path: _os.remove(_p(path)),
        rename=lambda a, b: _os.replace(_p(a), _p(b)), rmdir=lambda p: _os.rmdir(_p(p)),
        stat=stat, sep="/", uname=lambda: ("sim", dev.id, "1.27.0", "anju-sim", dev.board["mcu"]),
        statvfs=lambda path: (4096, 4096, 512, 400, 400, 0, 0, 0, 0, 255),
        urandom=_os.urandom, _open=_open,
    )

    # ---- socket ---------------------------------------------------------
    # The host's real sockets (so the firmware's MQTT client talks to a real
    # Mosquitto), with the link below them simulated: no access point → every
    # call fails as lwIP does (EHOSTUNREACH); `dev.link_fault` injects a
    # broker-side fault in tests. On the esp32 port setblocking(True) clears a
    # timeout (lwIP), as here.
    import errno as _errno
    import select as _select
    import socket as _socket

    def _link():
        if not dev.wifi_ok:
            raise OSError(_errno.EHOSTUNREACH, "EHOSTUNREACH")

    class DeviceSocket:
        def __init__(self, af=_socket.AF_INET, type=_socket.SOCK_STREAM, proto=0):
            _link()
            self._s = _socket.socket(af, type, proto)
            dev.sockets.add(self)  # closed when this boot ends (deep sleep, power cut)

        def settimeout(self, t):
            self._s.settimeout(t)

        def setblocking(self, flag):
            self._s.settimeout(None if flag else 0.0)

        def connect(self, addr):
            _link()
            fault = dev.broker_fault
            if fault is not None and addr[1] == dev.config["mqtt"].get("port", 1883):
                addr = (fault.host, fault.port)  # the broker this device meets misbehaves
            self._s.connect(addr)

        def send(self, data):
            _link()
            return self._s.send(data)

        def sendall(self, data):
            _link()
            self._s.sendall(data)
            data = bytes(data)
            topic = _publish_topic(data)
            if topic is not None:
                dev.sim.on_device_published(dev, topic, b"")
            elif data[:1] == b"\xc0":
                # PINGREQ: the round trip takes no virtual time; wait (real
                # time, bounded) for the broker's PINGRESP to be readable
                _select.select([self._s], [], [], 2.0)

        def recv(self, n):
            _link()
            return self._s.recv(n)

        def fileno(self):
            return self._s.fileno()

        def close(self):
            dev.sockets.discard(self)
            self._s.close()

    def _publish_topic(data):
        """The topic of an MQTT PUBLISH packet, or None (counts frames for settle())."""
        if not data or data[0] >> 4 != 3:
            return None
        i, n, shift = 1, 0, 0
        while i < len(data) and i < 5:
            n |= (data[i] & 0x7F) << shift
            shift += 7
            i += 1
            if not data[i - 1] & 0x80:
                break
        if i + 2 > len(data):
            return None
        size = (data[i] << 8) | data[i + 1]
        return data[i + 2:i + 2 + size].decode("utf-8", "replace")

    def getaddrinfo(host, port, af=0, type=0, proto=0, flags=0):
        _link()
        return _socket.getaddrinfo(host, port, af, type or _socket.SOCK_STREAM, proto, flags)

    socket_mod = _module("socket", socket=DeviceSocket, getaddrinfo=getaddrinfo,
                         AF_INET=_socket.AF_INET, SOCK_STREAM=_socket.SOCK_STREAM,
                         SOL_SOCKET=_socket.SOL_SOCKET, SO_REUSEADDR=_socket.SO_REUSEADDR)

    micropython = _module("micropython", const=lambda v: v,
                          alloc_emergency_exception_buf=lambda n: None,
                          schedule=lambda fn, arg: fn(arg), mem_info=lambda *a: None)
    gc = _module("gc", collect=lambda: 0, mem_free=lambda: 100000, mem_alloc=lambda: 20000,
                 enable=lambda: None, disable=lambda: None, threshold=lambda *a: -1)

    mods = {"machine": machine, "esp32": esp32, "time": time_mod, "utime": time_mod,
            "network": network, "bluetooth": bluetooth, "os": os_mod, "micropython": micropython,
            "gc": gc, "socket": socket_mod,
            "usocket": socket_mod}
    if dev.board["port"] != "esp32":
        del mods["esp32"]
    return mods
