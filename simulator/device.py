"""A simulated device: the unmodified firmware app running in its own thread.

The firmware runs until it blocks (time.sleep_ms, machine.lightsleep,
machine.deepsleep); then control returns to the scheduler, which owns the
virtual clock and resumes the device when its wake time comes or a pin it
waits on changes. Deep sleep ends the thread; the wake reboots main.py with RTC
memory and the flash folder kept, as on the chip. Power loss ends the thread
and forgets RTC memory.

Only one thing runs at a time (the scheduler or one device), so the firmware
sees a deterministic world.
"""
import os
import shutil
import threading
import traceback

from simulator import loader

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5


class DeepSleep(BaseException):
    """Raised inside the firmware by machine.deepsleep(); ends this boot."""


class PowerLoss(BaseException):
    """Raised inside the firmware when the simulator removes power."""


class DeviceCrashed(Exception):
    pass


class SimPin:
    def __init__(self, device, pin_id):
        self.device = device
        self.id = pin_id
        self.level = 1  # pulled up unless the world drives it
        self.mode = None
        self.pull = None
        self.handler = None
        self.trigger = 0
        self.wake = 0


class SimDevice:
    RISING = 1
    FALLING = 2

    def __init__(self, sim, device_id, board, config, fs_root, mac, app="door_sensor"):
        self.sim = sim
        self.id = device_id
        self.board = board
        self.config = config
        self.fs_root = fs_root
        self.mac = bytes(mac)
        self.mac_str = ":".join("%02X" % b for b in self.mac)
        self.app = app
        self.pins = {}
        self.adc_mv = {}
        self.rtc_memory = b""
        self.reset_cause = PWRON_RESET
        self.wifi_ok = True    # the access point is reachable
        self.wifi_on_s = 0.0   # virtual seconds the Wi-Fi radio was on
        self.wifi_connects = 0
        self.broker_fault = None  # a FaultBroker the device meets instead of the broker
        self.sockets = set()      # open sockets of this boot (simulator/shims.py)
        self._wifi_since = None
        self.powered = False
        self.thread = None
        self.block = None  # ("sleep", t) | ("light", t) | ("deep", t) | ("dead", reason)
        self.wake_at = None
        self.pending_irqs = []
        self.deep_wake = []  # [(pin_id, level, source)] that end deep sleep (source: ext0, ext1, gpio)
        self.boots = 0
        self.error = None
        self._go = threading.Event()
        self._yielded = threading.Event()
        self._kill = False
        self.log = []
        # smoke sensors: photodiode and other analog sources, siren PWM, timers
        self.adc_source = {}   # pin id -> fn(device) -> raw u16 (no battery divider)
        self.pwm_log = {}      # pin id -> [(virtual time, duty_u16)] on every change
        self.timers = []       # shims.Timer objects with a `due` virtual time
        self._now_override = None
        self.on_pwm = None     # optional fn(pin id, duty) for benchmarks

    # ---- files --------------------------------------------------------------
    def install(self, firmware_root):
        """Lay out the device filesystem as `anju deploy` would."""
        import json
        os.makedirs(self.fs_root, exist_ok=True)
        with open(os.path.join(self.fs_root, "config.json"), "w") as f:
            json.dump(self.config, f)
        with open(os.path.join(self.fs_root, "board.json"), "w") as f:
            json.dump(self.board, f)
        shutil.copy(os.path.join(firmware_root, self.app, "main.py"),
                    os.path.join(self.fs_root, "main.py"))
        self.firmware_root = firmware_root

    def pin(self, pin_id):
        p = self.pins.get(pin_id)
        if p is None:
            p = self.pins[pin_id] = SimPin(self, pin_id)
        return p

    # ---- called from the firmware thread (through the shims) ---------------
    def now(self):
        if self._now_override is not None:
            return self._now_override  # inside a timer callback: its own due time
        return self.sim.clock.now()

    def fire_timers(self):
        """Run timer callbacks that fell due while the firmware was blocked, each
        at its own virtual time (a hardware timer keeps running while the app
        waits on the network)."""
        while True:
            now = self.sim.clock.now()
            due = [t for t in self.timers if t.due is not None and t.due <= now]
            if not due:
                return
            t = min(due, key=lambda x: x.due)
            self._now_override = t.due
            try:
                t.fire()
            finally:
                self._now_override = None

    def _yield(self, block):
        self.block = block
        self._yielded.set()
        self._go.wait()
        self._go.clear()
        if self._kill:
            raise PowerLoss()
        self.fire_timers()
        self._run_irqs()

    def _run_irqs(self):
        while self.pending_irqs:
            pin = self.pending_irqs.pop(0)
            if pin.handler is not None:
                pin.handler(pin.shim)

    def sleep_ms(self, ms):
        if ms <= 0:
            return
        self._yield(("sleep", self.now() + ms / 1000.0))

    def lightsleep(self, ms):
        self._yield(("light", self.now() + (ms / 1000.0 if ms else 1e9)))

    def deepsleep(self, ms):
        t = self.now() + (ms / 1000.0 if ms else 1e12)
        raise DeepSleep(t)

    def close_sockets(self):
        """A reset ends every connection (the broker sees the TCP link drop)."""
        for sock in list(self.sockets):
            sock.close()

    def wifi_radio(self, on):
        """The firmware switched its Wi-Fi radio on or off (accounted in virtual time)."""
        if on and self._wifi_since is None:
            self._wifi_since = self.now()
        elif not on and self._wifi_since is not None:
            self.wifi_on_s += self.now() - self._wifi_since
            self._wifi_since = None

    def wifi_radio_on_s(self):
        """Seconds the radio was on so far, counting a radio that is on now."""
        running = self.sim.clock.now() - self._wifi_since if self._wifi_since is not None else 0.0
        return self.wifi_on_s + running

    # ---- called from the scheduler -----------------------------------------
    def power_on(self, cause=PWRON_RESET):
        self.powered = True
        self.reset_cause = cause
        if cause == PWRON_RESET:
            self.rtc_memory = b""
        self.deep_wake = []
        self.boots += 1
        self._kill = False
        self._go.clear()
        self._yielded.clear()
        self.thread = threading.Thread(target=self._boot, name="device-" + self.id, daemon=True)
        self.thread.start()
        self._wait_yield()

    def _boot(self):
        try:
            loader.run_main(self, self.firmware_root)
            self.block = ("dead", "main returned")
        except DeepSleep as exc:
            self.block = ("deep", exc.args[0])
        except PowerLoss:
            self.block = ("off", None)
        except Exception as exc:  # the firmware crashed: recorded, reported by the scheduler
            self.error = "".join(traceback.format_exception(exc))
            self.block = ("dead", repr(exc))
        self.wifi_radio(False)  # the boot is over: deep sleep or no power turns the radio off
        self.close_sockets()
        self._yielded.set()

    def _wait_yield(self, timeout=30.0):
        if not self._yielded.wait(timeout):
            raise DeviceCrashed("%s: firmware did not yield within %.0f s of real time"
                                % (self.id, timeout))
        self._yielded.clear()
        kind, t = self.block
        self.wake_at = t if kind in ("sleep", "light", "deep") else None
        if kind == "deep":
            for pin_id, want, _ in self.deep_wake:
                if self.pin(pin_id).level == want:
                    self.wake_at = self.now()  # the wake level already holds
        if kind == "dead":
            raise DeviceCrashed("%s: firmware stopped: %s\n%s" % (self.id, t, self.error or ""))

    def resume(self):
        """Run the device from its block point until it blocks again."""
        kind = self.block[0]
        if kind == "deep":
            self.power_on(DEEPSLEEP_RESET)
            return
        if kind == "off":
            return
        self._go.set()
        self._wait_yield()

    def power_off(self):
        """Remove the battery: the thread ends, RTC memory is lost, flash stays."""
        if self.block and self.block[0] in ("sleep", "light"):
            self._kill = True
            self._go.set()
            self._wait_yield_off()
        self.block = ("off", None)
        self.wake_at = None
        self.powered = False
        self.rtc_memory = b""

    def _wait_yield_off(self):
        self._yielded.wait(30.0)
        self._yielded.clear()

    def set_level(self, pin_id, level):
        """The world drives a pin (reed switch, button, tamper switch)."""
        p = self.pin(pin_id)
        old = p.level
        p.level = level
        if old == level:
            return
        edge = self.RISING if level else self.FALLING
        kind = self.block[0] if self.block else "off"
        if kind in ("sleep", "light") and p.handler is not None and p.trigger & edge:
            self.pending_irqs.append(p)
            if kind == "light":
                self.wake_at = self.now()  # the interrupt ends light sleep
        if kind == "deep":
            for pin_id2, want, _ in self.deep_wake:
                if self.pin(pin_id2).level == want:
                    self.wake_at = self.now()
