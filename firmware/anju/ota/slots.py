"""A/B slots for over-the-air updates: which slot boots, pure logic.

The device keeps two slot directories, `ota/a` and `ota/b`, and one state
record, `ota/state` (docs/ota.md). An update is written into the slot that is
not active while the state still points at the active one, so a power cut
during the copy leaves the device booting what it ran before. Every change of
the state is one `store.write` (temp file + rename: atomic on LittleFS), so at
any instant the record is the old one or the new one, and each of them names a
slot whose files are complete:

    idle --commit_install--> pending --boot--> trial --confirm--> idle (new active)
                                                 |
                                                 +--boot (a reset, or the trial's
                                                 |    boots used up)--> idle (old
                                                 |    active, failure recorded)
                                                 +--crashed--> idle (same)

`trial` is written *before* the new slot runs (it is tried once); only the
app's `confirm` (after it has reached the hub) makes it the active slot. A
battery sensor reboots on every deep-sleep wake, so a trial may span up to
`max_boots` wakes from deep sleep; any other reset during a trial (watchdog,
crash, power-on, brown-out) means the new slot failed; the shim keeps a
watchdog running from the first instruction of a trial on boards that
deep-sleep, so a release that hangs before its app feeds one is reset too. The failures are kept
(the last FAILURES_KEPT) until the app has reported them.

Functions take and return plain dict states; `load`/`save` touch the store,
which has read(name) -> bytes or None, write(name, data) (atomic replace) and
remove(name). Nothing here imports hardware.
"""
import json

STATE = "ota/state"
SLOTS = ("a", "b")
FAILURES_KEPT = 4
FORMAT = 1


class SlotError(ValueError):
    """An update step is not allowed in this state; str(exc) says why."""


def initial(version, slot="a"):
    """The state `anju deploy` writes with the first install into `slot`."""
    return {"format": FORMAT, "active": slot, "pending": None, "trial": None, "boots": 0,
            "versions": {slot: version, other(slot): None}, "failed": []}


def other(slot):
    return "b" if slot == "a" else "a"


def slot_dir(slot):
    return "ota/" + slot


def _copy(state):
    new = dict(state)
    new["versions"] = dict(state["versions"])
    new["failed"] = list(state["failed"])
    return new


def decode(raw):
    """A state from its stored bytes, or None if they are not one."""
    if raw is None:
        return None
    try:
        st = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(st, dict) or st.get("format") != FORMAT:
        return None
    for key in ("active", "pending", "trial", "boots", "versions", "failed"):
        if key not in st:
            return None
    active, pending, trial = st["active"], st["pending"], st["trial"]
    if active not in SLOTS or pending not in (None,) + SLOTS or trial not in (None,) + SLOTS:
        return None
    if active in (pending, trial) or (pending is not None and trial is not None):
        return None
    versions = st["versions"]
    if not isinstance(versions, dict) or versions.get(active) is None:
        return None
    for slot in (pending, trial):
        if slot is not None and versions.get(slot) is None:
            return None
    if not isinstance(st["failed"], list) or not isinstance(st["boots"], int):
        return None
    return st


def encode(state):
    return json.dumps(state).encode()


def load(store):
    return decode(store.read(STATE))


def save(store, state):
    store.write(STATE, encode(state))


def running_version(state):
    """The version the device runs now (the trial's while one is on)."""
    if state is None:
        raise SlotError("no slot state on this device (not deployed with slots, or lost)")
    slot = state["trial"] or state["active"]
    return state["versions"][slot]


def install_target(state):
    """The slot an update is written into; SlotError while another update is
    waiting or on trial (finish that first)."""
    if state["pending"] is not None or state["trial"] is not None:
        raise SlotError("an update is already waiting or on trial")
    return other(state["active"])


def commit_install(state, slot, version):
    """After every file of `version` is in `slot` and has been checked on
    flash: the next boot tries it."""
    if slot != install_target(state):
        raise SlotError("slot %s is the active one" % slot)
    new = _copy(state)
    new["pending"] = slot
    new["versions"][slot] = version
    return new


def _failed(state, slot, reason):
    new = _copy(state)
    new["failed"] = (new["failed"] + [{"version": state["versions"][slot], "reason": reason}])[-FAILURES_KEPT:]
    new["trial"] = None
    new["boots"] = 0
    return new


def boot(state, woke_from_sleep, max_boots=1, watchdog=False):
    """(new_state, slot to run). The caller saves new_state (when it is not
    the `state` it gave) before it runs anything from the slot. `watchdog`:
    this boot follows a watchdog reset (the reason a failed trial records).

    `state` None (nothing stored, or unreadable) boots slot a, as `anju deploy`
    installs it; the caller reports that."""
    if state is None:
        return None, "a"
    if state["pending"] is not None:
        new = _copy(state)
        new["trial"] = state["pending"]
        new["pending"] = None
        new["boots"] = 1
        return new, new["trial"]
    trial = state["trial"]
    if trial is not None:
        if woke_from_sleep and state["boots"] < max_boots:
            new = _copy(state)
            new["boots"] = state["boots"] + 1
            return new, trial
        if woke_from_sleep:
            reason = "not confirmed within %d boots" % max_boots
        elif watchdog:
            reason = "watchdog reset during its trial (the release hung)"
        else:
            reason = "reset during its trial (crash, watchdog or power loss)"
        return _failed(state, trial, reason), state["active"]
    return state, state["active"]


def confirm(state):
    """The app reached the hub: the trial slot becomes the active one.
    Returns state unchanged when no trial is on."""
    if state is None or state["trial"] is None:
        return state
    new = _copy(state)
    new["active"] = state["trial"]
    new["trial"] = None
    new["boots"] = 0
    return new


def crashed(state, reason):
    """The app raised out of its main loop: a trial fails at once."""
    if state is None or state["trial"] is None:
        return state
    return _failed(state, state["trial"], "crashed: " + reason)


def reported(state, count):
    """The first `count` failures reached the hub: forget them."""
    if state is None or not count:
        return state
    new = _copy(state)
    new["failed"] = new["failed"][count:]
    return new
