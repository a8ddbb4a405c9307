"""Smart lock hardware: the H-bridge and bolt (end stops, motor current), the
door reed, the inside handle, the tamper switch and the battery divider.

`Bolt.run_bolt` runs one motor run: it drives the H-bridge as the pure core
(anju.lock.bolt) says, sampling the motor current and the end stops every
SAMPLE_MS with time.sleep_ms, until the core ends the run (at an end stop,
or jammed after reversing). The loop is bounded by the core's own limits
(travel_ms each way) and by a hard iteration cap on top.

Pins from board["pins"] (docs/smart_lock.md "Hardware and pins"); a pin the
board does not wire is None and its input reads as idle. Interrupt handlers
only set flags.
"""
import time

import machine

from anju.lock import bolt as core

SAMPLE_MS = 10
REVERSE_PAUSE_MS = 20  # off between two directions: the motor stops, no shoot-through


def _input(board, name):
    """An input with its pull-up; the ESP32's GPIO34-39 have none (the board
    has external ones)."""
    pin_id = board["pins"].get(name)
    if pin_id is None:
        return None
    Pin = machine.Pin
    if board.get("mcu") == "esp32" and 34 <= pin_id <= 39:
        return Pin(pin_id, Pin.IN)
    return Pin(pin_id, Pin.IN, Pin.PULL_UP)


def _adc(board, name):
    pin_id = board["pins"].get(name)
    if pin_id is None:
        return None
    if hasattr(machine.ADC, "ATTN_11DB"):  # esp32: the whole 0-3.3 V range
        return machine.ADC(machine.Pin(pin_id), atten=machine.ADC.ATTN_11DB)
    return machine.ADC(machine.Pin(pin_id))


class Bolt:
    """H-bridge (A high: throw, B high: retract), end stops (low at that end),
    motor current through a shunt amplifier of `mv_per_a`."""

    def __init__(self, board, mv_per_a=2000):
        pins = board["pins"]
        Pin = machine.Pin
        self.a = Pin(pins["motor_a"], Pin.OUT, value=0)
        self.b = Pin(pins["motor_b"], Pin.OUT, value=0)
        self.locked = _input(board, "bolt_locked")
        self.unlocked = _input(board, "bolt_unlocked")
        self.adc = _adc(board, "motor_adc")
        self.full_mv = board["adc"]["full_scale_mv"]
        self.mv_per_a = mv_per_a
        self.dir = 0

    def drive(self, d):
        """1 throw, -1 retract, 0 off (coast), 2 brake. Off first, so the two
        bridge halves are never on against each other."""
        if d == 1:
            self.b.value(0)
            self.a.value(1)
        elif d == -1:
            self.a.value(0)
            self.b.value(1)
        elif d == 2:
            self.a.value(1)
            self.b.value(1)
        else:
            self.a.value(0)
            self.b.value(0)
        self.dir = d

    def ends(self):
        """(at the locked end, at the unlocked end)."""
        return self.locked.value() == 0, self.unlocked.value() == 0

    def current_ma(self):
        if self.adc is None:
            return 0
        return self.adc.read_u16() * self.full_mv * 1000 // (65535 * self.mv_per_a)

    def run_bolt(self, direction, core_cfg, state, door=None, method=0):
        """Lock (1) or unlock (-1) and supervise the run; returns (state,
        actions): everything the core said, for the app to report. `door`
        (a LockInputs) is read on every sample, so a door opening while
        locking turns the bolt back."""
        state, acts = core.handle(state, ("lock" if direction > 0 else "unlock", method),
                                  time.ticks_ms(), core_cfg)
        self.apply(acts)
        return self.supervise(state, core_cfg, door, acts)

    def supervise(self, state, core_cfg, door=None, acts=None):
        """Sample and feed the core until the run it started ends (a lock or
        unlock, or an auto-relock a `tick` started: apply() its actions
        first); returns (state, actions)."""
        if acts is None:
            acts = []
        cap = (2 * core_cfg.travel_ms + 1000) // SAMPLE_MS
        n = 0
        while core.running(state) and n < cap:
            n += 1
            time.sleep_ms(SAMPLE_MS)
            now = time.ticks_ms()
            if door is not None and door.reed is not None:
                is_open = door.door_open()
                if is_open != state.door_open:
                    state, out = core.handle(state, ("door", is_open), now, core_cfg)
                    self.apply(out)
                    acts.extend(out)
            at_locked, at_unlocked = self.ends()
            state, out = core.handle(state, ("sample", self.current_ma(), at_locked,
                                             at_unlocked), now, core_cfg)
            self.apply(out)
            acts.extend(out)
        if self.dir:
            self.drive(0)  # the cap: never leave the motor on
        return state, acts

    def watch_ends(self, state, core_cfg):
        """While the motor is off: feed the end stops once (a mechanical key,
        the bolt forced); returns (state, actions)."""
        at_locked, at_unlocked = self.ends()
        return core.handle(state, ("sample", 0, at_locked, at_unlocked), time.ticks_ms(),
                           core_cfg)

    def apply(self, out):
        """Carry out the core's motor actions (the others are the app's)."""
        stopped = False
        for a in out:
            if a[0] != "motor":
                continue
            d = a[1]
            if d == 0:
                stopped = self.dir != 0
                self.drive(0)
            else:
                if stopped:
                    time.sleep_ms(REVERSE_PAUSE_MS)
                self.drive(d)


class LockInputs:
    """Door reed (high: open), inside handle (low while pressed), case tamper
    (high: opened), battery divider. Pins the board lacks read as idle."""

    def __init__(self, board):
        self.board = board
        self.reed = _input(board, "reed")
        self.handle = _input(board, "handle")
        self.tamper = _input(board, "tamper")
        self.battery = _adc(board, "battery_adc")
        self.changed = False
        self.handle_pressed = False

    def _on_change(self, pin):
        self.changed = True  # ISR: record the fact only

    def _on_handle(self, pin):
        self.handle_pressed = True
        self.changed = True

    def watch(self):
        """Interrupts (and so light-sleep wakes) on every change."""
        both = machine.Pin.IRQ_RISING | machine.Pin.IRQ_FALLING
        if self.reed is not None:
            self.reed.irq(handler=self._on_change, trigger=both)
        if self.tamper is not None:
            self.tamper.irq(handler=self._on_change, trigger=both)
        if self.handle is not None:
            self.handle.irq(handler=self._on_handle, trigger=machine.Pin.IRQ_FALLING)

    def door_open(self):
        return self.reed is not None and self.reed.value() == 1

    def handle_down(self):
        return self.handle is not None and self.handle.value() == 0

    def tamper_open(self):
        return self.tamper is not None and self.tamper.value() == 1

    def battery_mv(self):
        if self.battery is None:
            return 0
        adc = self.board["adc"]
        return self.battery.read_u16() * adc["full_scale_mv"] * adc["divider_x100"] // (65535 * 100)

    def take(self):
        """(changed, handle pressed) since the last take."""
        c, h = self.changed, self.handle_pressed
        self.changed = False
        self.handle_pressed = False
        return c, h


def boot_state(bolt_hw, inputs, cfg, now=None):
    """A fresh core state from the inputs as they read now."""
    at_locked, at_unlocked = bolt_hw.ends()
    state = core.BoltState()
    state, acts = core.handle(state, ("boot", at_locked, at_unlocked, inputs.door_open()),
                              time.ticks_ms() if now is None else now, cfg)
    return state, acts
