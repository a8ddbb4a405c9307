"""Progress of a write: a bar redrawn in place on a terminal, a plain line
every 10 % otherwise (logs and CI keep one line per step)."""
import sys


class Progress:
    def __init__(self, label, stream=None, width=30, unit="bytes"):
        self.label = label
        self.unit = unit
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.width = width
        self.done = 0
        self.total = 0
        self._last_step = -1

    def update(self, done, total):
        self.done, self.total = done, total
        pct = 100 * done // total if total else 100
        if self.tty:
            fill = self.width * done // total if total else self.width
            self.stream.write("\r%s [%s%s] %3d%% %d/%d %s" % (
                self.label, "#" * fill, "." * (self.width - fill), pct, done, total, self.unit))
            if done >= total:
                self.stream.write("\n")
        else:
            step = pct // 10
            if step != self._last_step:
                self._last_step = step
                self.stream.write("%s: %d%% (%d of %d %s)\n" % (self.label, pct, done, total,
                                                                 self.unit))
        self.stream.flush()
