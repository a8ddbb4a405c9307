"""Keypad entry: keys in, a finished entry out (pure; docs/smart_lock.md).

`#` ends an entry (4-8 digits a PIN, 10 a visitor code); `*` first starts a programming entry (`*` PIN `#`), `*`
later clears what was typed. Digits only; more than MAX_DIGITS digits are
kept as typed, so an over-long entry fails as a wrong code rather than
matching a prefix. An entry left unfinished for TIMEOUT_MS is dropped.
"""
MAX_DIGITS = 10  # a PIN has 4-8 digits, a visitor code 10
MIN_DIGITS = 4
TIMEOUT_MS = 10000
_DIGITS = "0123456789"


class Entry:
    def __init__(self):
        self.digits = ""
        self.program = False
        self.last_ms = None
        self.overflow = False

    def clear(self):
        self.digits = ""
        self.program = False
        self.last_ms = None
        self.overflow = False

    def busy(self):
        return self.last_ms is not None

    def expired(self, now_ms):
        """Drop an entry left unfinished; True when one was dropped."""
        if self.last_ms is not None and now_ms - self.last_ms >= TIMEOUT_MS:
            self.clear()
            return True
        return False

    def feed(self, key, now_ms):
        """One key; a finished entry as ("pin" | "program", digits), else None.
        An entry shorter than MIN_DIGITS is returned too (it is a wrong code)."""
        self.expired(now_ms)
        if key == "#":
            if self.last_ms is None:
                return None  # a lone '#' is nothing
            out = ("program" if self.program else "pin", self.digits)
            self.clear()
            return out
        if key == "*":
            if self.last_ms is None:
                self.program = True
                self.last_ms = now_ms
            else:
                self.clear()
            return None
        if key in _DIGITS:
            if len(self.digits) < MAX_DIGITS + 1:
                self.digits += key  # one more than allowed is enough to fail
            self.last_ms = now_ms
        return None  # A-D: not used for entries
