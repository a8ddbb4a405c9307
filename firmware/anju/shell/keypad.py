"""4x4 keypad matrix driver (keys "123A", "456B", "789C", "*0#D" by row).

Rows (`kp_rows`) are push-pull outputs, columns (`kp_cols`) inputs with
pull-ups. A scan drives one row low at a time, the others high, and reads the
four columns: a low column is a pressed key on that row. The contacts bounce
for a few ms; a change of what the scan reads counts once it held for
`stable` scans `scan_ms` apart (3 x 5 ms by default), so a key-down or a
key-up is reported once. Assembling a PIN entry (`*1234#`) is the app's job.

Waking: `arm_wake()` drives all rows low and arms a falling-edge interrupt
on every column (the handler only sets `woken`), so any key pulls its column
low while the lock light-sleeps; `disarm()` before scanning again.

No allocation while scanning (the state is ints); every wait is bounded.
"""
import time

import machine

KEYS = "123A456B789C*0#D"


def wired(board):
    """The board has a keypad (the ESP32-C3 lock has none)."""
    pins = board["pins"]
    return len(pins.get("kp_rows") or ()) == 4 and len(pins.get("kp_cols") or ()) == 4


def _low_bit(mask):
    bit = 0
    while not mask & (1 << bit):
        bit += 1
    return bit


class Keypad:
    def __init__(self, board, scan_ms=5, stable=3):
        pins = board["pins"]
        Pin = machine.Pin
        self.rows = [Pin(p, Pin.OUT, value=1) for p in pins["kp_rows"]]
        self.cols = [Pin(p, Pin.IN, Pin.PULL_UP) for p in pins["kp_cols"]]
        self.scan_ms = scan_ms
        self.stable = stable
        self.down = 0       # debounced: bit r*4+c set while that key is down
        self._raw = 0       # the last scan
        self._same = 0      # scans in a row that read _raw
        self._pend_dn = 0   # changes not yet handed out
        self._pend_up = 0
        self.woken = False
        self._armed = False

    # ---- scanning ----------------------------------------------------------
    def scan(self):
        """One pass over the matrix: the keys read closed now (a 16-bit mask)."""
        rows = self.rows
        cols = self.cols
        mask = 0
        for r in range(4):
            rows[r].value(0)
            time.sleep_us(10)  # the membrane's capacitance settles
            for c in range(4):
                if cols[c].value() == 0:
                    mask |= 1 << (r * 4 + c)
            rows[r].value(1)
        return mask

    def update(self):
        """Scan once and debounce; True when there are events to take."""
        raw = self.scan()
        if raw == self._raw:
            if self._same < 255:
                self._same += 1
        else:
            self._raw = raw
            self._same = 1
        if self._same >= self.stable and raw != self.down:
            changed = raw ^ self.down
            self._pend_dn |= changed & raw
            self._pend_up |= changed & ~raw
            self.down = raw
        return bool(self._pend_dn or self._pend_up)

    def take(self):
        """The next event as (key, is_down), key-ups first; None if none."""
        if self._pend_up:
            bit = _low_bit(self._pend_up)
            self._pend_up &= ~(1 << bit)
            return KEYS[bit], False
        if self._pend_dn:
            bit = _low_bit(self._pend_dn)
            self._pend_dn &= ~(1 << bit)
            return KEYS[bit], True
        return None

    def read_event(self, timeout_ms):
        """Scan every scan_ms until a key goes down or up; None after timeout_ms."""
        ev = self.take()
        if ev is not None:
            return ev
        deadline = time.ticks_add(time.ticks_ms(), timeout_ms)
        for _ in range(timeout_ms // self.scan_ms + 2):
            if self.update():
                return self.take()
            if time.ticks_diff(deadline, time.ticks_ms()) <= 0:
                break
            time.sleep_ms(self.scan_ms)
        return None

    def idle(self):
        """True when no key is down (debounced) and none is waiting."""
        return not (self.down or self._pend_dn or self._pend_up)

    # ---- waking --------------------------------------------------------------
    def _on_column(self, pin):
        self.woken = True  # ISR: record the fact only

    def arm_wake(self):
        """All rows low, column interrupts on: any key makes a falling edge."""
        self.woken = False
        for r in self.rows:
            r.value(0)
        for c in self.cols:
            c.irq(handler=self._on_column, trigger=machine.Pin.IRQ_FALLING)
        self._armed = True

    def disarm(self):
        if self._armed:
            for c in self.cols:
                c.irq(handler=None, trigger=0)  # off: no interrupt, no wake
            self._armed = False
        for r in self.rows:
            r.value(1)

    def any_pressed(self):
        """With the rows low (armed): a column is held low by some key."""
        for c in self.cols:
            if c.value() == 0:
                return True
        return False
