"""Boot selector of the A/B OTA slots, and the API the apps call.

On a device with OTA, `/main.py` is a fixed shim that calls `run()` first:
it loads the slot state (anju.ota.slots), decides which slot boots, saves the new
state *before* anything of that slot runs (a trial is recorded as tried), then
imports the slot's `app` with the slot's own `lib/` first on the path (the
runtime in /lib that made the decision is dropped from sys.modules, so the
app imports its own release's modules). If the app raises out of its loop,
the trial is marked failed at once and the exception goes on to the shim,
which resets the board. The app calls `confirm()` once it has reached the hub.

`woke_from_sleep` comes from the reset cause (hw.woke_from_deepsleep()):
only a deep-sleep wake continues a trial; any other reset ends it.
"""
import sys

from anju.ota import slots
from anju.shell.ota.store import SlotStore


def select(store, woke_from_sleep, max_boots=1, watchdog=False):
    """(state, slot) for this boot; a changed state is saved first."""
    state = slots.load(store)
    new, slot = slots.boot(state, woke_from_sleep, max_boots, watchdog)
    if new is not None and new is not state:
        slots.save(store, new)
    return new, slot


def slot_path(root, slot):
    return (root.rstrip("/") + "/" if root else "/") + slots.slot_dir(slot)


# set by run() when the app raised during its trial and the failure is saved:
# the caller resets the board, so the previous slot boots
rolled_back = False


def prepare(woke_from_sleep, max_boots=1, root="", watchdog=False):
    """Choose this boot's slot (saving a trial as tried first) and make
    `import app` load it: the slot's `lib/` first on sys.path, the `anju`
    modules that decided dropped from sys.modules (this one included), so the
    app imports its own release's runtime and nothing of the selector stays
    on the heap once the caller lets go of this module. True when this boot
    runs a trial."""
    store = SlotStore(root)
    state, slot = select(store, woke_from_sleep, max_boots, watchdog)
    base = slot_path(root, slot)
    for name in list(sys.modules):
        if name == "app" or name == "anju" or name.startswith("anju."):
            del sys.modules[name]
    sys.path[:0] = [base + "/lib", base]
    return state is not None and state["trial"] is not None


def record_crash(exc, root=""):
    """The app raised out of its loop: a trial fails at once. True when a
    trial was on (the caller resets the board so the previous slot runs)."""
    store = SlotStore(root)
    state = slots.load(store)
    failed = slots.crashed(state, repr(exc)[:80])
    if failed is state:
        return False
    slots.save(store, failed)
    return True


def run(woke_from_sleep, max_boots=1, root=""):
    """prepare() and import the app; a crash during a trial is recorded
    (`rolled_back`) and re-raised."""
    global rolled_back
    prepare(woke_from_sleep, max_boots, root)
    try:
        __import__("app")
    except Exception as exc:
        if record_crash(exc, root):
            rolled_back = True
        raise


def confirm(root=""):
    """The app has reached the hub: the slot it runs from stays."""
    store = SlotStore(root)
    state = slots.load(store)
    new = slots.confirm(state)
    if new is not state:
        slots.save(store, new)
    return new


def failures(root=""):
    """Failed updates not yet reported: [{"version", "reason"}]."""
    state = slots.load(SlotStore(root))
    return [] if state is None else list(state["failed"])


def reported(count, root=""):
    store = SlotStore(root)
    state = slots.load(store)
    new = slots.reported(state, count)
    if new is not state:
        slots.save(store, new)
