"""Smart-lock wire formats (docs/smart_lock.md "Frames", "Commands").

Device -> hub bodies (LOCK_STATE 0x20 ... LOCAL_CHANGE 0x25), built with range
checks so the lock never sends what the hub would reject as `bad_body`; hub ->
lock commands (0x28-0x2E) verified with `anju.command.check` and decoded into
a `Command` whose every field is range-checked (FrameError "bad_body"); the
timed-invoke check; and the key derivations (credential digests, the phone
key's wrapping).

All integers are big-endian. A credential id field is `u8 n` then 16 bytes: n
ASCII bytes of `A-Z a-z 0-9 : . _ -`, then zeros. Ids are bytes here.

Pure. It never logs or returns a key, a PIN or a card UID in anything it
reports; digests are compared by the caller in constant time.
"""
import struct

from anju import aes, command
from anju.frame import FrameError, hmac_sha256

# ---- device -> hub frame types --------------------------------------------
T_LOCK_STATE = 0x20
T_ACCESS = 0x21
T_FORCED = 0x22
T_LOCK_ALARM = 0x23
T_CMD_RESULT = 0x24
T_LOCAL_CHANGE = 0x25

# ---- hub -> lock command types -----------------------------------------------
T_LOCK_CTL = 0x28
T_USER_SET = 0x29
T_USER_REMOVE = 0x2A
T_CRED_SET = 0x2B
T_CRED_REMOVE = 0x2C
T_SET_TIME = 0x2D
T_SETTINGS = 0x2E
T_VISITOR_REVOKE = 0x2F

# bolt (LOCK_STATE)
BOLT_UNKNOWN = 0
BOLT_LOCKED = 1
BOLT_UNLOCKED = 2
BOLT_LOCKING = 3
BOLT_UNLOCKING = 4
BOLT_JAMMED = 5

# door (LOCK_STATE)
DOOR_UNKNOWN = 0
DOOR_CLOSED = 1
DOOR_OPEN = 2
DOOR_AJAR = 3
DOOR_FORCED = 4

# LOCK_STATE flags
SF_TAMPER = 0x01
SF_BATTERY_LOW = 0x02
SF_LOCKED_OUT = 0x04
SF_CLOCK_SET = 0x08

# ACCESS method (also LOCK_ALARM's input and LOCK_CTL's method)
M_NONE = 0
M_CARD = 1
M_PIN = 2
M_PHONE = 3
M_FACE = 4
M_MECHANICAL_KEY = 5
M_FINGERPRINT = 6
M_INSIDE = 7
M_REMOTE = 8
M_VISITOR = 9   # a visitor code at the keypad (anju.lock.visitor)

# ACCESS outcome
UNLOCKED = 1
DENIED = 2

# ACCESS reason
R_OK = 0
R_UNKNOWN_CREDENTIAL = 1
R_OUTSIDE_SCHEDULE = 2
R_EXPIRED = 3
R_NOT_YET_VALID = 4
R_DISABLED = 5
R_LOCKED_OUT = 6
R_LOW_BATTERY = 7
R_USED = 8
R_JAMMED = 9
R_REVOKED = 10     # a visitor code the hub revoked
R_NO_CLOCK = 11    # a visitor code while the lock's clock is not set
R_LIST_FULL = 12   # a one-time visitor code with no room left to record its use
R_LIST_LOST = 13   # a visitor code while the blocked list's damaged file may have held it

# ACCESS flags
AF_DURESS = 0x01

# FORCED cause
FORCED_OPENED_WITHOUT_UNLOCK = 1
FORCED_BOLT_FORCED = 2

# LOCK_ALARM kind
ALARM_WRONG_CODE_LIMIT = 1
ALARM_JAMMED = 2
ALARM_DOOR_AJAR = 3

# CMD_RESULT result
RES_OK = 0
RES_EXPIRED = 1
RES_NO_CLOCK = 2
RES_FULL = 3
RES_UNKNOWN_USER = 4
RES_UNKNOWN_CREDENTIAL = 5
RES_DUPLICATE = 6
RES_BAD_VALUE = 7
RES_JAMMED = 8

# LOCAL_CHANGE op
OP_CREDENTIAL_ADDED = 1
OP_CREDENTIAL_REMOVED = 2
OP_USER_ADDED = 3
OP_USER_REMOVED = 4

# credential kinds (the same numbers as the methods that use them)
K_CARD = 1
K_PIN = 2
K_PHONE = 3
K_FACE = 4
K_FINGERPRINT = 6
KINDS = (K_CARD, K_PIN, K_PHONE, K_FACE, K_FINGERPRINT)

# user types (Matter DoorLock UserTypeEnum, as the doc numbers them)
U_UNRESTRICTED = 0
U_WEEK_DAY = 1
U_YEAR_DAY = 2
U_ONE_TIME = 3
U_EXPIRING = 4
U_DURESS = 5
U_DISABLED = 6
U_PROGRAMMING = 7
USER_TYPES = 8

LOCK_CTL_LOCK = 1
LOCK_CTL_UNLOCK = 2

ID_LEN = 16
ID_FIELD = 1 + ID_LEN
DATA_LEN = 16
DAY_MIN = 1440
VALID_MAX_S = 600
UTC_OFFSET_MIN = -720   # UTC-12:00
UTC_OFFSET_MAX = 840    # UTC+14:00

BODY_LEN = {T_LOCK_STATE: 10, T_ACCESS: 27, T_FORCED: 1, T_LOCK_ALARM: 4,
            T_CMD_RESULT: 25, T_LOCAL_CHANGE: 21,
            T_LOCK_CTL: 21, T_USER_SET: 20, T_USER_REMOVE: 4, T_CRED_SET: 38,
            T_CRED_REMOVE: 19, T_SET_TIME: 6, T_SETTINGS: 10, T_VISITOR_REVOKE: 10}


# ---- credential ids ------------------------------------------------------------

def _id_char(c):
    return (0x41 <= c <= 0x5A or 0x61 <= c <= 0x7A or 0x30 <= c <= 0x39
            or c == 0x3A or c == 0x2E or c == 0x5F or c == 0x2D)


def valid_id(cid, allow_empty=False):
    """True when `cid` (bytes) is a credential id: 1..16 allowed characters."""
    n = len(cid)
    if n > ID_LEN or (n == 0 and not allow_empty):
        return False
    for c in cid:
        if not _id_char(c):
            return False
    return True


def id_field(cid):
    """The 17-byte field of credential id `cid` (bytes or str; may be empty)."""
    if isinstance(cid, str):
        cid = cid.encode()
    if not valid_id(cid, True):
        raise ValueError("credential id must be up to 16 of A-Z a-z 0-9 : . _ -")
    return bytes((len(cid),)) + cid + bytes(ID_LEN - len(cid))


def parse_id(buf, off, allow_empty=False):
    """The credential id in the field at `buf[off:off+17]`; FrameError("bad_body")."""
    n = buf[off]
    if n > ID_LEN:
        raise FrameError("bad_body", "credential id length %d" % n)
    cid = bytes(buf[off + 1:off + 1 + n])
    if not valid_id(cid, allow_empty):
        raise FrameError("bad_body", "credential id")
    for i in range(off + 1 + n, off + ID_FIELD):
        if buf[i]:
            raise FrameError("bad_body", "credential id padding")
    return cid


# ---- device -> hub bodies --------------------------------------------------------

def _u(v, hi, what):
    if not 0 <= v <= hi:
        raise ValueError("%s %r out of range 0..%d" % (what, v, hi))
    return v


def lock_state_body(bolt, door, flags, percent, millivolts, queued, ops_left):
    """LOCK_STATE (10 bytes); counts above 0xFFFF are sent as 0xFFFF."""
    _u(bolt, BOLT_JAMMED, "bolt")
    _u(door, DOOR_FORCED, "door")
    _u(flags, 0x0F, "flags")
    _u(percent, 100, "battery %")
    return struct.pack(">BBBBHHH", bolt, door, flags, percent, _u(millivolts, 0xFFFF, "mV"),
                       min(queued, 0xFFFF), min(ops_left, 0xFFFF))


def access_body(method, outcome, reason, flags, user, seq, cid=b""):
    """ACCESS (27 bytes)."""
    if method < M_CARD or method > M_VISITOR:
        raise ValueError("method %r" % (method,))
    if outcome not in (UNLOCKED, DENIED):
        raise ValueError("outcome %r" % (outcome,))
    _u(reason, R_LIST_LOST, "reason")
    if (outcome == UNLOCKED) != (reason == R_OK):
        raise ValueError("an opening has reason ok, a denial another reason")
    return struct.pack(">BBBBHI", method, outcome, reason, _u(flags, AF_DURESS, "flags"),
                       _u(user, 0xFFFF, "user"), _u(seq, 0xFFFFFFFF, "seq")) + id_field(cid)


def forced_body(cause):
    if cause not in (FORCED_OPENED_WITHOUT_UNLOCK, FORCED_BOLT_FORCED):
        raise ValueError("forced cause %r" % (cause,))
    return bytes((cause,))


def lock_alarm_body(kind, active, method=M_NONE, count=0):
    """LOCK_ALARM (4 bytes): kind, 1 raised / 0 cleared, the input, a count."""
    if kind not in (ALARM_WRONG_CODE_LIMIT, ALARM_JAMMED, ALARM_DOOR_AJAR):
        raise ValueError("alarm kind %r" % (kind,))
    return bytes((kind, _u(active, 1, "active"), _u(method, M_REMOTE, "method"),
                  _u(min(count, 0xFF), 0xFF, "count")))


def cmd_result_body(counter, mtype, result, user=0, cid=b""):
    """CMD_RESULT (25 bytes) for the command with hub counter `counter`."""
    _u(result, RES_JAMMED, "result")
    return struct.pack(">IBBH", _u(counter, 0xFFFFFFFF, "counter"), _u(mtype, 0xFF, "type"),
                       result, _u(user, 0xFFFF, "user")) + id_field(cid)


def local_change_body(op, kind, user, cid=b""):
    """LOCAL_CHANGE (21 bytes); `kind` 0 for a user change."""
    if op < OP_CREDENTIAL_ADDED or op > OP_USER_REMOVED:
        raise ValueError("op %r" % (op,))
    if kind != 0 and kind not in KINDS:
        raise ValueError("kind %r" % (kind,))
    return struct.pack(">BBH", op, kind, _u(user, 0xFFFF, "user")) + id_field(cid)


# ---- hub -> lock commands ---------------------------------------------------------

class Command:
    """A verified command: type, the hub's counter, the header's device time
    (the hub's clock when it signed), valid_s (0 for SET_TIME) and `args`:

    LOCK_CTL    (action, method, who_id)
    USER_SET    (user, type, days, start_min, end_min, from, until, expire_min)
    USER_REMOVE (user,)
    CRED_SET    (user, kind, cred_id, data16)
    CRED_REMOVE (cred_id,)
    SET_TIME    (utc_offset_min, answers: the counter of the lock's frame it answers)
    SETTINGS    (relock_s, wrong_limit, lockout_s, ajar_s)
    VISITOR_REVOKE (start_slot, duration_index, one_time, check)
    """

    __slots__ = ("type", "counter", "time", "valid_s", "args")

    def __init__(self, mtype, counter, device_time, valid_s, args):
        self.type = mtype
        self.counter = counter
        self.time = device_time
        self.valid_s = valid_s
        self.args = args


def _bad(what):
    raise FrameError("bad_body", what)


def _valid_s(body):
    v = (body[0] << 8) | body[1]
    if v < 1 or v > VALID_MAX_S:
        _bad("valid_s %d" % v)
    return v


def _user_index(v):
    if v == 0:
        _bad("user 0")
    return v


def _lock_ctl(body):
    action, method = body[2], body[3]
    if action not in (LOCK_CTL_LOCK, LOCK_CTL_UNLOCK):
        _bad("action %d" % action)
    if method not in (M_FACE, M_REMOTE):
        _bad("method %d" % method)
    return _valid_s(body), (action, method, parse_id(body, 4, True))


def _user_set(body):
    user, utype, days, start, end, frm, until, expire = struct.unpack_from(">HBBHHIIH", body, 2)
    _user_index(user)
    if utype >= USER_TYPES:
        _bad("user type %d" % utype)
    if days & 0x80:
        _bad("week days 0x%02x" % days)
    if end > DAY_MIN or start >= end:
        _bad("minutes %d..%d" % (start, end))
    if frm and until and frm >= until:
        _bad("from %d until %d" % (frm, until))
    if utype == U_WEEK_DAY and days == 0:
        _bad("week-day schedule without days")
    if utype == U_EXPIRING and expire == 0:
        _bad("expiring user with expire_min 0")
    return _valid_s(body), (user, utype, days, start, end, frm, until, expire)


def _user_remove(body):
    return _valid_s(body), (_user_index((body[2] << 8) | body[3]),)


def _cred_set(body):
    user = _user_index((body[2] << 8) | body[3])
    kind = body[4]
    if kind not in KINDS:
        _bad("credential kind %d" % kind)
    cid = parse_id(body, 5)
    data = bytes(body[22:38])
    if kind == K_FINGERPRINT:
        for i in range(2, DATA_LEN):
            if data[i]:
                _bad("fingerprint data padding")
    return _valid_s(body), (user, kind, cid, data)


def _cred_remove(body):
    return _valid_s(body), (parse_id(body, 2),)


def _set_time(body):
    offset, answers = struct.unpack(">hI", body)
    if offset < UTC_OFFSET_MIN or offset > UTC_OFFSET_MAX:
        _bad("UTC offset %d" % offset)
    if answers == 0:
        _bad("SET_TIME answers no frame")
    return 0, (offset, answers)


def _settings(body):
    relock, limit, lockout, ajar, flags = struct.unpack_from(">HBHHB", body, 2)
    if relock > 3600:
        _bad("relock_s %d" % relock)
    if limit < 1 or limit > 5:
        _bad("wrong_limit %d" % limit)
    if lockout < 90 or lockout > 3600:
        _bad("lockout_s %d" % lockout)
    if ajar < 10 or ajar > 3600:
        _bad("ajar_s %d" % ajar)
    if flags:
        _bad("flags")
    return _valid_s(body), (relock, limit, lockout, ajar)


def _visitor_revoke(body):
    start, d, ot, check = struct.unpack_from(">IBBH", body, 2)
    if d >= 32:
        _bad("duration index %d" % d)
    if ot > 1:
        _bad("one_time %d" % ot)
    if check >= 54253:
        _bad("check %d" % check)
    return _valid_s(body), (start, d, ot, check)


CHECKERS = {
    T_LOCK_CTL: (BODY_LEN[T_LOCK_CTL], _lock_ctl),
    T_USER_SET: (BODY_LEN[T_USER_SET], _user_set),
    T_USER_REMOVE: (BODY_LEN[T_USER_REMOVE], _user_remove),
    T_CRED_SET: (BODY_LEN[T_CRED_SET], _cred_set),
    T_CRED_REMOVE: (BODY_LEN[T_CRED_REMOVE], _cred_remove),
    T_SET_TIME: (BODY_LEN[T_SET_TIME], _set_time),
    T_SETTINGS: (BODY_LEN[T_SETTINGS], _settings),
    T_VISITOR_REVOKE: (BODY_LEN[T_VISITOR_REVOKE], _visitor_revoke),
}


def verify_command(frame_key, device_id, data, last_counter):
    """A fresh, authentic, well-formed lock command as a `Command`.

    Raises FrameError (`truncated`, `oversized`, `bad_version`, `bad_tag`,
    `unknown_type`, `bad_body`, `replayed`): not answered, only counted. A
    SET_TIME without a time in its header is `bad_body`.
    """
    mtype, counter, device_time, decoded = command.check(frame_key, device_id, data,
                                                         last_counter, CHECKERS)
    if mtype == T_SET_TIME and device_time == 0:
        raise FrameError("bad_body", "SET_TIME without a time")
    return Command(mtype, counter, device_time, decoded[0], decoded[1])


def timed_result(cmd, lock_now, clock_set):
    """RES_OK, RES_NO_CLOCK or RES_EXPIRED for a verified command (timed invoke).

    SET_TIME is exempt; every other command is refused while the lock's clock
    is unset, and once `lock_now` is past the header's time plus `valid_s`.
    """
    if cmd.type == T_SET_TIME:
        return RES_OK
    if not clock_set:
        return RES_NO_CLOCK
    if lock_now > cmd.time + cmd.valid_s:
        return RES_EXPIRED
    return RES_OK


# ---- keys and credential data -----------------------------------------------------

DIGEST_LEN = 16


def cred_key(frame_key):
    """HMAC-SHA256(frame_key, "anju-lock-cred"): the key of card and PIN digests."""
    return hmac_sha256(frame_key, b"anju-lock-cred")


def wrap_key(frame_key):
    """HMAC-SHA256(frame_key, "anju-lock-wrap")[:16]: wraps phone keys (AES-128)."""
    return hmac_sha256(frame_key, b"anju-lock-wrap")[:16]


def card_digest(ckey, uid):
    """What the lock stores for a card: HMAC-SHA256(cred_key, "card" 0x00 UID)[:16]."""
    if not 4 <= len(uid) <= 10:
        raise ValueError("card UID must be 4, 7 or 10 bytes")
    return hmac_sha256(ckey, b"card\x00", bytes(uid))[:DIGEST_LEN]


def pin_digest(ckey, digits):
    """What the lock stores for a PIN: HMAC-SHA256(cred_key, "pin" 0x00 digits)[:16]."""
    if isinstance(digits, str):
        digits = digits.encode()
    if not 4 <= len(digits) <= 8:
        raise ValueError("a PIN has 4 to 8 digits")
    for c in digits:
        if not 0x30 <= c <= 0x39:
            raise ValueError("a PIN has only digits")
    return hmac_sha256(ckey, b"pin\x00", digits)[:DIGEST_LEN]


def fingerprint_data(template_id):
    """The 16 data bytes of a fingerprint credential: u16 template id, zeros."""
    return struct.pack(">H", _u(template_id, 0xFFFF, "template id")) + bytes(DATA_LEN - 2)


def unwrap_phone_key(wkey, block):
    """The phone key in `block` (AES-128-ECB decryption of one block)."""
    return bytes(aes.AES128(wkey).decrypt_block(block))
