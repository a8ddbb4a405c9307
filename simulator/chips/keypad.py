"""A 4x4 membrane keypad matrix (docs/simulator.md, "The keypad").

Keys by row: "123A", "456B", "789C", "*0#D". The firmware drives the rows
(outputs the model watches) and reads the columns with pull-ups: a column
reads low when a pressed key joins it, directly or through other pressed keys
(ghosting, as on the real matrix), to a row driven low. The model drives the
column pins (inputs()); rows it has not seen driven count as high.

Contact bounce: for `bounce_ms` (5) after a press and after a release the
contact chatters, closed and open in alternate milliseconds; a driver must
debounce. `bounce_ms=0` gives clean contacts.

The world (through SimDevice.change_chip, which also delivers the column's
edge: an interrupt, or a wake while the lock sleeps with all rows low):
`press(key, now, until=None, since=None)` (down at `since`, default now;
held until `until`, or until `release`),
`release(key, now)`.

Written for MicroPython and CPython alike: it runs in the board too.
"""
KIND = "keypad"
KEYS = ("123A", "456B", "789C", "*0#D")


def _where(key):
    for r, row in enumerate(KEYS):
        c = row.find(key)
        if c >= 0 and len(key) == 1:
            return r, c
    raise ValueError("no key %r on the keypad" % (key,))


class Chip:
    def __init__(self, rows, cols, bounce_ms=5):
        if len(rows) != 4 or len(cols) != 4:
            raise ValueError("a 4x4 keypad needs 4 rows and 4 columns")
        self.rows = list(rows)
        self.cols = list(cols)
        self.bounce_ms = bounce_ms
        self.pressed = []  # [key, since, until or None]

    @classmethod
    def for_board(cls, board, **kw):
        return cls(board["pins"]["kp_rows"], board["pins"]["kp_cols"], **kw)

    def state(self):
        return {"kind": KIND, "rows": self.rows, "cols": self.cols,
                "bounce_ms": self.bounce_ms, "pressed": self.pressed}

    @classmethod
    def restore(cls, st):
        c = cls(st["rows"], st["cols"], st["bounce_ms"])
        c.pressed = [list(p) for p in st["pressed"]]
        return c

    def inputs(self):
        return self.cols

    def analog(self):
        return ()

    def outputs(self):
        return self.rows

    def pin_written(self, pin_id, level, now, levels):
        pass  # nothing to catch up: the columns follow the rows at once

    # ---- contacts ------------------------------------------------------------
    def closed(self, key, since, until, now):
        if now < since:
            return False
        b = self.bounce_ms / 1000
        if now < since + b:
            return int((now - since) * 1000) % 2 == 0
        if until is None or now < until:
            return True
        if now < until + b:
            return int((now - until) * 1000) % 2 == 1
        return False

    def level(self, pin_id, now, levels):
        col = self.cols.index(pin_id)
        # nodes 0-3 rows, 4-7 columns; a closed key joins its row and column
        group = [0, 1, 2, 3, 4, 5, 6, 7]

        def find(n):
            while group[n] != n:
                n = group[n]
            return n
        for key, since, until in self.pressed:
            if self.closed(key, since, until, now):
                r, c = _where(key)
                a, b = find(r), find(4 + c)
                if a != b:
                    group[a] = b
        mine = find(4 + col)
        for r in range(4):
            if find(r) == mine and levels.get(self.rows[r], 1) == 0:
                return 0
        return 1

    def down(self, now):
        """The keys whose contact is made now (for tests and the world)."""
        return [p[0] for p in self.pressed if self.closed(p[0], p[1], p[2], now)]

    # ---- the world -------------------------------------------------------------
    def press(self, key, now, until=None, since=None):
        """`key` goes down at `since` (default `now`, the world's time; a later
        `since` lays out typing ahead) and up at `until` (None: at release)."""
        _where(key)
        b = self.bounce_ms / 1000
        self.pressed = [p for p in self.pressed if p[2] is None or p[2] + b > now]
        self.pressed.append([key, now if since is None else since, until])

    def release(self, key, now):
        for p in self.pressed:
            if p[0] == key and (p[2] is None or p[2] > now):
                p[2] = now
