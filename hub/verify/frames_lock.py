"""Smart-lock message types (docs/smart_lock.md "Frames", docs/protocol.md
"Smart lock messages"), 0x20-0x27, registered with `hub.verify.frames` on import.

Decoding is pure and rejects any value outside the documented ranges (a
reserved flag bit set, a number without a name, a credential id with a
character outside `A-Z a-z 0-9 : . _ -` or with bytes after its padding): the
frame is then `bad_body`. A credential id is what the lock reports for the
credential used (the hub's `c-17` or the lock's `L:pin:3`), never a PIN, a
card's UID or a key; it is compared with the residents' `credentials:` and
the hub's own provisioning records.

`access_body()`, `forced_body()` and the other `*_body()` encoders build bodies
for tests and the simulator. Never decodes anything it cannot range-check.
"""
import struct

from hub.verify import frames
from hub.visitors import passcode

T_LOCK_STATE = 0x20
T_ACCESS = 0x21
T_FORCED = 0x22
T_LOCK_ALARM = 0x23
T_CMD_RESULT = 0x24
T_LOCAL_CHANGE = 0x25

METHODS = {1: "card", 2: "pin", 3: "phone_ble", 4: "face", 5: "mechanical_key",
           6: "fingerprint", 7: "inside", 8: "remote", 9: "visitor"}
OUTCOMES = {1: "unlocked", 2: "denied"}
REASONS = {0: "ok", 1: "unknown_credential", 2: "outside_schedule", 3: "expired",
           4: "not_yet_valid", 5: "disabled", 6: "locked_out", 7: "low_battery", 8: "used",
           9: "jammed", 10: "revoked", 11: "no_clock", 12: "list_full", 13: "list_lost"}
BOLT = {0: "unknown", 1: "locked", 2: "unlocked", 3: "locking", 4: "unlocking", 5: "jammed"}
DOOR = {0: "unknown", 1: "closed", 2: "open", 3: "ajar", 4: "forced"}
FORCED_CAUSES = {1: "opened_without_unlock", 2: "bolt_forced"}
LOCK_ALARMS = {1: "wrong_code_limit", 2: "jammed", 3: "door_ajar"}
RESULTS = {0: "ok", 1: "expired", 2: "no_clock", 3: "full", 4: "unknown_user",
           5: "unknown_credential", 6: "duplicate", 7: "bad_value", 8: "jammed"}
LOCAL_OPS = {1: "credential_added", 2: "credential_removed", 3: "user_added", 4: "user_removed"}
CREDENTIAL_KINDS = {1: "card", 2: "pin", 3: "phone", 4: "face", 6: "fingerprint"}
# the hub's command types a CMD_RESULT may answer (hub/locks/wire.py builds them)
COMMAND_TYPES = {0x28: "lock_ctl", 0x29: "user_set", 0x2A: "user_remove", 0x2B: "cred_set",
                 0x2C: "cred_remove", 0x2D: "set_time", 0x2E: "settings",
                 0x2F: "visitor_revoke"}

CREDENTIAL_LEN = 16
CREDENTIAL_FIELD = 1 + CREDENTIAL_LEN
CREDENTIAL_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789:._-")
LOCK_STATE_LEN = 10
ACCESS_LEN = 10 + CREDENTIAL_FIELD
FORCED_LEN = 1
LOCK_ALARM_LEN = 4
CMD_RESULT_LEN = 8 + CREDENTIAL_FIELD
LOCAL_CHANGE_LEN = 4 + CREDENTIAL_FIELD

STATE_FLAGS = (("case_open", 0x01), ("battery_low", 0x02), ("locked_out", 0x04),
               ("clock_set", 0x08))
DOOR_OPEN = ("open", "ajar", "forced")

_BAD = object()  # a credential field out of range


def read_credential(body, offset):
    """The credential id field at `offset` (u8 n, 16 bytes): str, None (n = 0) or _BAD."""
    n = body[offset]
    if n > CREDENTIAL_LEN:
        return _BAD
    raw = body[offset + 1:offset + 1 + CREDENTIAL_LEN]
    cred, pad = raw[:n], raw[n:]
    if any(b not in CREDENTIAL_CHARS for b in cred) or any(pad):
        return _BAD
    return cred.decode("ascii") if n else None


def credential_field(credential):
    """Encode a credential id field (u8 n, then 16 bytes, zero padded); ValueError
    for an id that the lock could not carry."""
    cred = (credential or "").encode("ascii")
    if len(cred) > CREDENTIAL_LEN or any(b not in CREDENTIAL_CHARS for b in cred):
        raise ValueError("credential id must be 0-%d characters of A-Z a-z 0-9 : . _ -"
                         % CREDENTIAL_LEN)
    return bytes((len(cred),)) + cred.ljust(CREDENTIAL_LEN, b"\x00")


def decode_lock_state(body):
    bolt, door, flags, pct, mv, queued, ops = struct.unpack(">BBBBHHH", body)
    if bolt not in BOLT or door not in DOOR or flags & 0xF0 or pct > 100:
        return None
    out = {"bolt": BOLT[bolt], "door": DOOR[door]}
    out.update({name: bool(flags & bit) for name, bit in STATE_FLAGS})
    out.update({"percent": pct, "millivolts": mv, "queued": queued, "ops_left": ops})
    if door:
        out["open"] = DOOR[door] in DOOR_OPEN  # the common door state (device_state)
    return out


def decode_access(body):
    method, outcome, reason, flags, user, seq = struct.unpack_from(">BBBBHI", body, 0)
    if method not in METHODS or outcome not in OUTCOMES or reason not in REASONS or flags & 0xFE:
        return None
    # an unlock has no refusal reason, and a refusal always has one
    if (outcome == 1) != (reason == 0):
        return None
    cred = read_credential(body, 10)
    if cred is _BAD:
        return None
    out = {"method": METHODS[method], "outcome": OUTCOMES[outcome], "reason": REASONS[reason],
           "duress": bool(flags & 1), "user": user or None, "seq": seq, "credential": cred}
    if method == 9:
        # a visitor code names the pass it is (v:<start slot>:<check>), or
        # nothing for ten digits that are no code of this lock
        code = passcode.parse_ident(cred) if cred is not None else None
        if (cred is not None and code is None) or (outcome == 1 and code is None) or user \
                or flags:
            return None
        out["visitor_code"] = None if code is None else {
            "start_slot": code[0], "check": code[1],
            "valid_from": code[0] * passcode.SLOT_S + passcode.MP_EPOCH_OFFSET}
    elif reason >= 10:
        return None  # revoked, no_clock, list_full, list_lost: a visitor code's reasons only
    return out


def decode_forced(body):
    cause = FORCED_CAUSES.get(body[0])
    return None if cause is None else {"forced": cause}


def decode_lock_alarm(body):
    kind, active, method, count = struct.unpack(">BBBB", body)
    # the input locked out: a visitor code is typed on the PIN keypad (method 2)
    if kind not in LOCK_ALARMS or active > 1 or (method and (method not in METHODS or method == 9)):
        return None
    return {"alarm": LOCK_ALARMS[kind], "active": bool(active),
            "method": METHODS.get(method), "count": count}


def decode_cmd_result(body):
    counter, mtype, result, user = struct.unpack_from(">IBBH", body, 0)
    if counter == 0 or mtype not in COMMAND_TYPES or result not in RESULTS:
        return None
    cred = read_credential(body, 8)
    if cred is _BAD:
        return None
    if mtype == 0x2F and (user or passcode.parse_ident(cred) is None):
        return None  # a revocation's answer names the code it blocked
    return {"command_counter": counter, "command": COMMAND_TYPES[mtype],
            "result": RESULTS[result], "user": user or None, "credential": cred}


def decode_local_change(body):
    op, kind, user = struct.unpack_from(">BBH", body, 0)
    if op not in LOCAL_OPS or (kind and kind not in CREDENTIAL_KINDS):
        return None
    cred = read_credential(body, 4)
    if cred is _BAD:
        return None
    if op in (1, 2) and (not kind or cred is None):
        return None  # a credential change names the credential and its kind
    return {"op": LOCAL_OPS[op], "kind": CREDENTIAL_KINDS.get(kind), "user": user or None,
            "credential": cred}


def _code(table, name):
    for k, v in table.items():
        if v == name:
            return k
    raise ValueError("%r is not one of %s" % (name, ", ".join(table.values())))


def access_body(method, outcome, credential=None, reason=None, duress=False, user=0, seq=0):
    """ACCESS body (names as in METHODS/OUTCOMES/REASONS). `reason` defaults to
    "ok" for an unlock and "unknown_credential" for a refusal."""
    if reason is None:
        reason = "ok" if outcome == "unlocked" else "unknown_credential"
    return (struct.pack(">BBBBHI", _code(METHODS, method), _code(OUTCOMES, outcome),
                        _code(REASONS, reason), 1 if duress else 0, user, seq)
            + credential_field(credential))


def forced_body(cause):
    return bytes([_code(FORCED_CAUSES, cause)])


def lock_state_body(bolt="locked", door="closed", tamper=False, battery_low=False,
                    locked_out=False, clock_set=True, percent=90, millivolts=5800, queued=0,
                    ops_left=4000):
    flags = (1 if tamper else 0) | (2 if battery_low else 0) | (4 if locked_out else 0) \
        | (8 if clock_set else 0)
    return struct.pack(">BBBBHHH", _code(BOLT, bolt), _code(DOOR, door), flags, percent,
                       millivolts, queued, ops_left)


def lock_alarm_body(alarm, active=True, method=None, count=0):
    return struct.pack(">BBBB", _code(LOCK_ALARMS, alarm), 1 if active else 0,
                       _code(METHODS, method) if method else 0, count)


def cmd_result_body(counter, command, result="ok", user=0, credential=None):
    return (struct.pack(">IBBH", counter, _code(COMMAND_TYPES, command), _code(RESULTS, result),
                        user) + credential_field(credential))


def local_change_body(op, kind=None, user=0, credential=None):
    return (struct.pack(">BBH", _code(LOCAL_OPS, op), _code(CREDENTIAL_KINDS, kind) if kind else 0,
                        user) + credential_field(credential))


frames.register(T_LOCK_STATE, "lock_state", LOCK_STATE_LEN, decode_lock_state)
frames.register(T_ACCESS, "access", ACCESS_LEN, decode_access)
frames.register(T_FORCED, "forced", FORCED_LEN, decode_forced)
frames.register(T_LOCK_ALARM, "lock_alarm", LOCK_ALARM_LEN, decode_lock_alarm)
frames.register(T_CMD_RESULT, "cmd_result", CMD_RESULT_LEN, decode_cmd_result)
frames.register(T_LOCAL_CHANGE, "local_change", LOCAL_CHANGE_LEN, decode_local_change)
