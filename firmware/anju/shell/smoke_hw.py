"""Smoke sensor hardware: the photoelectric chamber (IR LED + photodiode on
an ADC), the siren (PWM, stepped through a pattern by a hardware timer), the
test/hush button and the battery divider.

The siren runs from a machine.Timer so that nothing the app does afterwards
(Wi-Fi, MQTT, BLE waits) can stall the temporal-3 pattern. The timer callback
only advances a preallocated index and writes a PWM duty; the button handler
only records that it was pressed. Neither allocates, writes flash or touches
a radio.
"""
import time

import machine

from anju.shell.hw import MAX_LIGHTSLEEP_MS

from anju import temporal

SIREN_HZ = 3100       # piezo resonance of a typical 85 dB smoke-alarm horn
SIREN_DUTY = 32768    # 50 %
LED_SETTLE_US = 100   # photodiode rise time after the LED pulse


class Chamber:
    """Pulse the IR LED, read the photodiode lit and dark (u16)."""

    def __init__(self, board):
        pins = board["pins"]
        self.led = machine.Pin(pins["ir_led"], machine.Pin.OUT, value=0)
        self.adc = machine.ADC(machine.Pin(pins["photodiode_adc"]))

    def read(self):
        self.led.value(0)
        dark = self.adc.read_u16()
        self.led.value(1)
        time.sleep_us(LED_SETTLE_US)
        lit = self.adc.read_u16()
        self.led.value(0)
        return dark, lit


class Siren:
    def __init__(self, board):
        self.pwm = machine.PWM(machine.Pin(board["pins"]["siren"]), freq=SIREN_HZ, duty_u16=0)
        # ESP32: hardware timer 0; rp2 has only the virtual timer -1
        self.timer = machine.Timer(0 if board["port"] == "esp32" else -1)
        self.edges = {}
        for name, p in temporal.PATTERNS.items():
            e = temporal.edges(p)
            if not temporal.REPEATS[name]:
                e.append((temporal.total_ms(p), -1))  # end of a one-shot pattern
            self.edges[name] = tuple(e)
        self.cycle = {name: temporal.total_ms(p) for name, p in temporal.PATTERNS.items()}
        self.pattern = "off"
        self._edges = ()
        self._cycle = 0
        self._i = 0

    def play(self, name):
        """Start `name` ("off" silences). Returns at once; the timer runs it."""
        self.timer.deinit()
        self.pwm.duty_u16(0)
        self.pattern = name
        if name == "off":
            return
        self._edges = self.edges[name]
        self._cycle = self.cycle[name]
        self._i = 0
        self._step(None)

    def busy(self):
        return self.pattern != "off"

    def _step(self, _timer):
        # timer callback: apply every edge due now, arm the timer for the next one
        edges = self._edges
        while True:
            at, level = edges[self._i]
            if level < 0:
                self.pwm.duty_u16(0)
                self.pattern = "off"
                return
            self.pwm.duty_u16(SIREN_DUTY if level else 0)
            self._i += 1
            if self._i >= len(edges):
                self._i = 0
                nxt = self._cycle - at
            else:
                nxt = edges[self._i][0] - at
            if nxt > 0:
                break
        self.timer.init(mode=machine.Timer.ONE_SHOT, period=nxt, callback=self._step)


class Button:
    """Test/hush button to ground (pulled up)."""

    def __init__(self, board):
        self.pin = machine.Pin(board["pins"]["test_button"], machine.Pin.IN, machine.Pin.PULL_UP)
        self.pressed = False
        self.pin.irq(handler=self._on_press, trigger=machine.Pin.IRQ_FALLING)

    def _on_press(self, pin):
        self.pressed = True  # ISR: record the fact only

    def take(self):
        p = self.pressed
        self.pressed = False
        return p


class Battery:
    def __init__(self, board):
        self.adc = machine.ADC(machine.Pin(board["pins"]["battery_adc"]))
        self.board = board

    def mv(self):
        adc = self.board["adc"]
        return self.adc.read_u16() * adc["full_scale_mv"] * adc["divider_x100"] // (65535 * 100)


def wait(ms, stay_awake, wake_flag, board=None):
    """Sleep `ms`; light sleep unless the siren or the radio must keep running.

    Returns early when `wake_flag()` becomes true (button). On the esp32 port
    the button is armed as a light-sleep wake (an edge interrupt alone does
    not end it: hw.arm_light_wake)."""
    if stay_awake:
        time.sleep_ms(ms)
        return
    poll = None
    if board is not None:
        from anju.shell import hw
        poll = hw.arm_light_wake(board, (board["pins"]["test_button"],), ())
    deadline = time.ticks_add(time.ticks_ms(), ms)
    while not wake_flag():
        left = time.ticks_diff(deadline, time.ticks_ms())
        if left <= 0:
            break
        machine.lightsleep(min(left, poll or MAX_LIGHTSLEEP_MS, MAX_LIGHTSLEEP_MS))
