"""Pins, ADC, debouncing and sleep for battery sensors.

Receives the board description (board.json, validated on the host by
`anju deploy`) and builds the hardware objects from it. Interrupt handlers only
record that a pin changed; the app loop does the work.
"""
import json
import time

import machine

# Reset causes as protocol numbers. Each port has its own set (rp2: only
# PWRON_RESET and WDT_RESET), so the table holds the ones this port defines.
RESET_NAMES = {}
for _name, _number in (("PWRON_RESET", 1), ("HARD_RESET", 2), ("WDT_RESET", 3),
                       ("DEEPSLEEP_RESET", 4), ("SOFT_RESET", 5)):
    if hasattr(machine, _name):
        RESET_NAMES[getattr(machine, _name)] = _number

# Frames carry seconds since 2000-01-01 (docs/protocol.md). time.time() counts
# from the port's epoch: 2000 on esp32, 1970 on rp2 (MICROPY_EPOCH_IS_1970).
_EPOCH_SHIFT = 946684800 if time.gmtime(0)[0] == 1970 else 0

# rp2's lightsleep refuses 2**32 // 1000 ms and more ("sleep too long")
MAX_LIGHTSLEEP_MS = 3600000


# where one chip cannot wake on both levels, the sleeper looks this often itself
MIXED_POLL_MS = 1000


def arm_light_wake(board, low=(), high=()):
    """Before machine.lightsleep(): make the inputs that must end it do so.

    `low`: GPIO numbers of inputs that end the sleep by going low (idle high: buttons,
    keypad columns, an open reed); `high`: by going high (a shut reed, a
    closed case, the end stop the bolt rests on). On rp2 an armed pin
    interrupt ends light sleep: nothing to do. The esp32 port ends it only on
    wake levels (modmachine.c, machine_sleep_helper): `esp32.wake_on_gpio`
    takes one level for all its pins, ext1 "any high" (the ESP32 only, RTC
    pins). Returns the longest the caller may sleep before it must look at
    the inputs itself (None: as long as it likes); the edge interrupts still
    run their handlers when the chip wakes."""
    if board["port"] != "esp32":
        return None
    import esp32
    pin = machine.Pin  # Pin(n) alone hands back the pin as configured
    # an input already at its wake level (a key held, a finger resting) would
    # end every sleep at once: leave it out and look at it on the timer
    stuck = [n for n in low if pin(n).value() == 0] + [n for n in high if pin(n).value() == 1]
    if stuck:
        low = [n for n in low if n not in stuck]
        high = [n for n in high if n not in stuck]
    poll = MIXED_POLL_MS if stuck else None
    if board["mcu"] != "esp32c3":
        rtc = board.get("rtc_pins", ())
        ext1 = [pin(n) for n in high if n in rtc]
        esp32.wake_on_ext1(pins=ext1, level=esp32.WAKEUP_ANY_HIGH)
        esp32.wake_on_gpio(pins=[pin(n) for n in low], level=False)
        return MIXED_POLL_MS if len(ext1) != len(high) else poll
    if low and high:
        esp32.wake_on_gpio(pins=[pin(n) for n in low], level=False)
        return MIXED_POLL_MS  # one level for all: the others are looked at
    esp32.wake_on_gpio(pins=[pin(n) for n in (high or low)], level=bool(high))
    return poll


def reset():
    machine.reset()


def watchdog(board, timeout_ms=30000):
    """Start the watchdog on a board that deep-sleeps (each wake is short,
    and deep sleep ends it); returns its feed. A board that light-sleeps
    between wakes (Pico W) keeps running its loop without one: the rp2
    watchdog's longest timeout (8.3 s) is shorter than its sleeps."""
    if not board.get("sleep", {}).get("deep"):
        return lambda: None
    return machine.WDT(timeout=timeout_ms).feed


def loop_watchdog(board, timeout_ms=30000):
    """Start the watchdog for an app that runs one loop and light-sleeps in
    it (the smoke sensor); returns its feed. On the esp32 port light sleep
    pauses the task watchdog, so it guards every stretch the loop runs; the
    rp2 watchdog counts through light sleep and would outlast none of the
    loop's sleeps with its 8.3 s at most, so a Pico W runs without one."""
    if board["port"] != "esp32":
        return lambda: None
    return machine.WDT(timeout=timeout_ms).feed


def device_time():
    """Seconds since 2000-01-01 UTC on every port (the frames' device time)."""
    return time.time() - _EPOCH_SHIFT


def load_board(path="/board.json"):
    with open(path) as f:
        return json.load(f)


def reset_cause():
    """Reset cause as the protocol number (docs/protocol.md, BOOT)."""
    return RESET_NAMES.get(machine.reset_cause(), 0)


def woke_from_deepsleep():
    # rp2 has no DEEPSLEEP_RESET: its boards light-sleep and never reboot from sleep
    return machine.reset_cause() == getattr(machine, "DEEPSLEEP_RESET", None)


class DoorInputs:
    """Reed switch (closed by the magnet when the door is shut), tamper switch,
    battery divider. Both switches pull to ground when closed."""

    def __init__(self, board):
        pins = board["pins"]
        self.board = board
        self.reed = machine.Pin(pins["reed"], machine.Pin.IN, machine.Pin.PULL_UP)
        self.tamper = machine.Pin(pins["tamper"], machine.Pin.IN, machine.Pin.PULL_UP)
        self.adc = machine.ADC(machine.Pin(pins["battery_adc"]))
        self.changed = False

    def _on_change(self, pin):
        # ISR: record the fact only
        self.changed = True

    def watch(self):
        trig = machine.Pin.IRQ_RISING | machine.Pin.IRQ_FALLING
        self.reed.irq(handler=self._on_change, trigger=trig)
        self.tamper.irq(handler=self._on_change, trigger=trig)

    def stable(self, pin, debounce_ms):
        """Pin level once it held still for `debounce_ms` (bounded wait)."""
        level = pin.value()
        if debounce_ms <= 0:
            return level
        held = 0
        waited = 0
        step = 5 if debounce_ms >= 5 else debounce_ms
        while held < debounce_ms and waited < 10 * debounce_ms:
            time.sleep_ms(step)
            waited += step
            now = pin.value()
            if now == level:
                held += step
            else:
                level = now
                held = 0
        return level

    def battery_mv(self):
        adc = self.board["adc"]
        raw = self.adc.read_u16()
        return raw * adc["full_scale_mv"] * adc["divider_x100"] // (65535 * 100)

    def sample(self, debounce_ms):
        """(is_open, case_open, battery_mv) for the core."""
        self.changed = False
        is_open = self.stable(self.reed, debounce_ms) == 1
        case_open = self.stable(self.tamper, debounce_ms) == 1
        return is_open, case_open, self.battery_mv()


def sleep(board, inputs, is_open, case_open, seconds):
    """Sleep until the next heartbeat or an input change.

    Deep sleep never returns (the device restarts in main.py). Where deep sleep
    cannot wake on the change that matters, the sensor light-sleeps with the
    pin interrupts armed and returns.

    - ESP32 (`ext0`): ext0 wakes on the reed's change, ext1 on the case opening.
    - ESP32-C3 (`gpio`): no ext0/ext1; `esp32.wake_on_gpio` takes ONE level for
      all its pins (GPIO0-5). A shut door (reed low) and a closed case (tamper
      low) both open towards high, so the sensor deep-sleeps waking on "any
      high". An open door must wake on low while the case still needs high, so
      while the door stands open it light-sleeps instead (about 130 uA rather
      than 5 uA, only for as long as the door is open).
    - Pico W (`none`): light sleep always; RAM is kept.
    """
    ms = seconds * 1000
    wake = board["sleep"]["pin_wake"]
    if wake == "ext0":
        import esp32
        esp32.wake_on_ext0(pin=inputs.reed, level=0 if is_open else 1)
        if not case_open:
            esp32.wake_on_ext1(pins=(inputs.tamper,), level=esp32.WAKEUP_ANY_HIGH)
        machine.deepsleep(ms)
    elif wake == "gpio" and not is_open:
        import esp32
        pins = (inputs.reed,) if case_open else (inputs.reed, inputs.tamper)
        esp32.wake_on_gpio(pins=pins, level=esp32.WAKEUP_ANY_HIGH)
        machine.deepsleep(ms)
    else:
        # light sleep with the pin interrupts armed; woken by a change or the timer
        inputs.watch()
        pins = board["pins"]
        low = [pins["reed"]] if is_open else []
        high = [] if is_open else [pins["reed"]]
        (low if case_open else high).append(pins["tamper"])
        poll = arm_light_wake(board, low, high) or MAX_LIGHTSLEEP_MS
        deadline = time.ticks_add(time.ticks_ms(), ms)
        while not inputs.changed:
            left = time.ticks_diff(deadline, time.ticks_ms())
            if left <= 0:
                break
            machine.lightsleep(min(left, poll, MAX_LIGHTSLEEP_MS))
