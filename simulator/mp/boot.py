"""Entry point the unix port runs for each boot: argv is boot.py <dir>, where
<dir> holds the simulator's MicroPython modules compiled to .mpy (_boot does
the work; importing bytecode is faster than compiling this file's source)."""
import sys

sys.path[:] = [sys.argv[1]]
import _boot  # noqa: E402,F401
