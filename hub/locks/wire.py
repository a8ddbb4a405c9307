"""Hub → lock command bodies and the lock's key derivations (docs/smart_lock.md,
"Users and credentials" and "Commands"). Pure.

Written from the document, independently of the firmware's `anju/lock/wire.py`;
both are checked against the same test vectors. Every builder checks its
ranges and raises `LockError` (nothing is queued) for a value the lock would
refuse as `bad_value`. The framing and the "cmd"-domain tag are
`hub.forward.device_commands.encode_command`.

Never logs, and never returns in clear, a PIN, a card UID or a phone key.
"""
import hashlib
import hmac
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from hub.locks import LockError
from hub.verify import frames_lock

T_LOCK_CTL = 0x28
T_USER_SET = 0x29
T_USER_REMOVE = 0x2A
T_CRED_SET = 0x2B
T_CRED_REMOVE = 0x2C
T_SET_TIME = 0x2D
T_SETTINGS = 0x2E
T_VISITOR_REVOKE = 0x2F
NAMES = frames_lock.COMMAND_TYPES  # type -> name, as a CMD_RESULT reports it

ACTIONS = {"lock": 1, "unlock": 2}
CTL_METHODS = {"face": 4, "remote": 8}
USER_TYPES = {"unrestricted": 0, "week_day_schedule": 1, "year_day_window": 2, "one_time": 3,
              "expiring": 4, "duress": 5, "disabled": 6, "programming": 7}
KINDS = {v: k for k, v in frames_lock.CREDENTIAL_KINDS.items()}  # name -> code
MAX_VALID_S = 600
ALL_DAYS = 0x7F
DAY_MINUTES = 1440
MAX_USER = 0xFFFF


def cred_key(frame_key):
    return hmac.new(frame_key, b"anju-lock-cred", hashlib.sha256).digest()


def wrap_key(frame_key):
    return hmac.new(frame_key, b"anju-lock-wrap", hashlib.sha256).digest()[:16]


def card_digest(frame_key, uid):
    """What the lock stores for a card: HMAC-SHA256(cred_key, "card" 0x00 UID)[:16]."""
    uid = bytes(uid)
    if len(uid) not in (4, 7, 10):  # ISO 14443-3 single, double, triple size
        raise LockError("a card UID is 4, 7 or 10 bytes")
    return hmac.new(cred_key(frame_key), b"card\x00" + uid, hashlib.sha256).digest()[:16]


def pin_digest(frame_key, digits):
    """What the lock stores for a PIN: HMAC-SHA256(cred_key, "pin" 0x00 digits)[:16]."""
    if not isinstance(digits, str) or not 4 <= len(digits) <= 8 or not digits.isdigit() \
            or not digits.isascii():
        raise LockError("a PIN is 4-8 digits")
    return hmac.new(cred_key(frame_key), b"pin\x00" + digits.encode("ascii"),
                    hashlib.sha256).digest()[:16]


def wrap_phone_key(frame_key, key):
    """A phone key as it travels: AES-128-ECB(wrap_key, key), one block."""
    key = bytes(key)
    if len(key) != 16:
        raise LockError("a phone key is 16 bytes")
    enc = Cipher(algorithms.AES(wrap_key(frame_key)), modes.ECB()).encryptor()
    return enc.update(key) + enc.finalize()


def _u16(value, what, low=0, high=0xFFFF):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise LockError("%s must be an integer %d..%d" % (what, low, high))
    return value


def _u32(value, what):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFFFFFF:
        raise LockError("%s must be a device time (u32)" % what)
    return value


def _valid(valid_s):
    return struct.pack(">H", _u16(valid_s, "valid_s", 1, MAX_VALID_S))


def _cred(credential, required=True):
    if required and not credential:
        raise LockError("a credential id is required")
    try:
        return frames_lock.credential_field(credential)
    except ValueError as exc:
        raise LockError(str(exc)) from exc


def lock_ctl(action, method="remote", who=None, valid_s=60):
    if action not in ACTIONS:
        raise LockError("action must be lock or unlock")
    if method not in CTL_METHODS:
        raise LockError("method must be face or remote")
    return _valid(valid_s) + bytes((ACTIONS[action], CTL_METHODS[method])) + _cred(who, False)


def user_set(user, user_type="unrestricted", week_days=ALL_DAYS, start_min=0,
             end_min=DAY_MINUTES, valid_from=0, valid_until=0, expire_min=0, valid_s=600):
    _u16(user, "user", 1, MAX_USER)
    if user_type not in USER_TYPES:
        raise LockError("user type must be one of %s" % ", ".join(USER_TYPES))
    _u16(week_days, "week_days", 0, ALL_DAYS)
    _u16(start_min, "start_min", 0, DAY_MINUTES)
    _u16(end_min, "end_min", 0, DAY_MINUTES)
    if start_min >= end_min:
        raise LockError("start_min must be before end_min")
    # what the lock refuses unanswered (docs/smart_lock.md): never queue it
    if user_type == "week_day_schedule" and not week_days:
        raise LockError("a week_day_schedule user needs at least one week day")
    if user_type == "expiring" and not expire_min:
        raise LockError("an expiring user needs expire_min (minutes after the first use)")
    _u32(valid_from, "from")
    _u32(valid_until, "until")
    if valid_from and valid_until and valid_until <= valid_from:
        raise LockError("until must be after from")
    _u16(expire_min, "expire_min")
    return _valid(valid_s) + struct.pack(">HBBHHIIH", user, USER_TYPES[user_type], week_days,
                                         start_min, end_min, valid_from, valid_until, expire_min)


def user_remove(user, valid_s=600):
    return _valid(valid_s) + struct.pack(">H", _u16(user, "user", 1, MAX_USER))


def cred_set(user, kind, credential, data, valid_s=600):
    """`data`: the 16 bytes the lock stores (card_digest, pin_digest,
    wrap_phone_key), or for a fingerprint its template id (an int)."""
    _u16(user, "user", 1, MAX_USER)
    if kind not in KINDS or kind == "face":
        raise LockError("credential kind must be card, pin, phone or fingerprint")
    if kind == "fingerprint":
        data = struct.pack(">H", _u16(data, "template id")) + bytes(14)
    elif not isinstance(data, (bytes, bytearray)) or len(data) != 16:
        raise LockError("credential data must be 16 bytes")
    return (_valid(valid_s) + struct.pack(">HB", user, KINDS[kind]) + _cred(credential)
            + bytes(data))


def cred_remove(credential, valid_s=600):
    return _valid(valid_s) + _cred(credential)


def set_time(utc_offset_min, answers):
    """No valid_s: the time is the header's device_time. `answers` is the
    counter of the lock's frame that made the hub send it: a lock refuses
    (`expired`) a SET_TIME answering a frame from before its current
    check-in, which waited in the broker and carries an old time."""
    if isinstance(utc_offset_min, bool) or not isinstance(utc_offset_min, int) \
            or not -12 * 60 <= utc_offset_min <= 14 * 60:
        raise LockError("UTC offset must be -720..840 minutes")
    if isinstance(answers, bool) or not isinstance(answers, int) or not 1 <= answers <= 0xFFFFFFFF:
        raise LockError("SET_TIME answers a frame: its counter must be 1..2**32-1")
    return struct.pack(">hI", utc_offset_min, answers)


def settings(relock_s=0, wrong_limit=5, lockout_s=90, ajar_s=60, valid_s=600):
    _u16(relock_s, "relock_s", 0, 3600)
    _u16(wrong_limit, "wrong_limit", 1, 5)
    _u16(lockout_s, "lockout_s", 90, 3600)
    _u16(ajar_s, "ajar_s", 10, 3600)
    return _valid(valid_s) + struct.pack(">HBHHB", relock_s, wrong_limit, lockout_s, ajar_s, 0)


def visitor_revoke(start_slot, duration_index, one_time, check, valid_s=600):
    """VISITOR_REVOKE: the lock puts the code on its blocked list until its
    window ends (docs/visitors.md, "At the lock")."""
    _u32(start_slot, "start_slot")
    _u16(duration_index, "duration_index", 0, 31)
    if not isinstance(one_time, bool) and one_time not in (0, 1):
        raise LockError("one_time must be 0 or 1")
    _u16(check, "check", 0, 54252)
    return _valid(valid_s) + struct.pack(">IBBH", start_slot, duration_index,
                                         1 if one_time else 0, check)


BODY_LEN = {T_LOCK_CTL: 21, T_USER_SET: 20, T_USER_REMOVE: 4, T_CRED_SET: 38,
            T_CRED_REMOVE: 19, T_SET_TIME: 6, T_SETTINGS: 10, T_VISITOR_REVOKE: 10}


def valid_s_of(mtype, body):
    """The body's valid_s (None for SET_TIME, which has none)."""
    if mtype == T_SET_TIME:
        return None
    return struct.unpack_from(">H", body, 0)[0]
