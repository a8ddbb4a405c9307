"""`/main.py` of a deployed device: boots through the A/B slots (docs/ota.md).

With the few modules of `/lib/anju` it needs (the slot state, its storage and
the boot selector) this is the only part of the firmware outside the slots,
and an update never changes it. A boot with no update waiting or on trial
reads the state record and runs the active slot without importing anything
of the selector (its names would stay interned on the heap). Otherwise the
selector (anju.shell.ota.boot) saves a trial as tried before any of the new
slot's code runs, and is dropped before the app starts. An app that raises
during its trial is recorded as failed (by the slot's own runtime) and the
board is reset, so the previous slot runs. Any other exception goes on to
the REPL, where the watchdog resets the board.

A trial on a board that deep-sleeps runs under the watchdog from here on
(the app starts its own with the same timeout, anju.shell.hw.watchdog): a
release that hangs before its loop feeds one is reset, and the boot after a
watchdog reset records the trial as failed ("watchdog"). A board that
light-sleeps between wakes (Pico W) cannot: its watchdog cannot be stopped
and outlasts none of its sleeps, so there a hang stays until power is cut.
"""
import gc
import sys

import machine


def _settled():
    """The active slot when nothing is waiting or on trial, else None."""
    import json
    try:
        with open("/ota/state") as f:
            st = json.load(f)
    except (OSError, ValueError):
        return None
    if (not isinstance(st, dict) or st.get("format") != 1 or st.get("pending") is not None
            or st.get("trial") is not None or st.get("active") not in ("a", "b")
            or not isinstance(st.get("versions"), dict) or not st["versions"].get(st["active"])):
        return None  # the selector decides (and says what it does with a bad record)
    return st["active"]


def _trial_boots():
    import json
    try:
        with open("/config.json") as f:
            n = json.load(f).get("ota_trial_boots", 1)
    except (OSError, ValueError, AttributeError):
        return 1  # the app refuses a bad config itself, naming the key
    return n if isinstance(n, int) and 1 <= n <= 50 else 1


def _deep_sleeps():
    import json
    try:
        with open("/board.json") as f:
            return bool(json.load(f).get("sleep", {}).get("deep"))
    except (OSError, ValueError, AttributeError):
        return False


def _select():
    slot = _settled()
    if slot is not None:
        sys.path[:0] = ["/ota/" + slot + "/lib", "/ota/" + slot]
        return
    from anju.shell.ota import boot
    cause = machine.reset_cause()
    trial = boot.prepare(cause == getattr(machine, "DEEPSLEEP_RESET", -1), _trial_boots(),
                         watchdog=cause == machine.WDT_RESET)
    if trial and _deep_sleeps():
        machine.WDT(timeout=30000)  # as the app's own (anju.shell.hw.watchdog)


_select()
del _select, _settled, _trial_boots, _deep_sleeps
gc.collect()
try:
    import app  # noqa: F401  the slot's app: runs until it sleeps or resets
except Exception as exc:
    from anju.shell.ota import boot
    if boot.record_crash(exc):
        machine.reset()
    raise
