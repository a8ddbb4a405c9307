"""The lock's access decision, `handle(state, event, now, cfg, table) -> (state, actions)`.

Pure state machine (docs/smart_lock.md "The decision"). `now` is device time
(seconds since 2000-01-01 UTC); local time is `now + state.utc_offset_min * 60`.
The table (`users.Table`) is changed in place; a ("persist", part) action says
which part the shell must write to flash before it carries out what follows.

For a card, PIN or fingerprint the credential is looked up, then, in order:
locked_out (that input), disabled (a disabled or a programming user),
not_yet_valid (before `from`), expired (after `until`, or an expiring user
past its time), used (a one-time user already used), outside_schedule (a
week-day user outside its days and minutes), low_battery; otherwise unlock.
While the clock is not set, any check that needs it fails (a time-restricted
user does not open until the hub set the clock; unrestricted ones do).

Wrong-code lockout: `wrong_limit` unknown credentials on one input (card, PIN,
fingerprint) within WRONG_WINDOW_S lock that input out for `lockout_s`; the
entry that reaches the limit raises LOCK_ALARM wrong_code_limit once, the end
of the lockout clears it. Only an opening (or entering programming mode)
resets the count, so a known-but-refused code cannot be used to keep guessing.

Events:
  ("credential", method, data)  card or PIN: the 16-byte digest (wire.card_digest,
                                wire.pin_digest), or None for a keypad entry that
                                cannot be a PIN (too short or too long: a wrong
                                code); fingerprint: the matched template id, or
                                None when the module found no match
  ("program", pin_digest)       `*` PIN `#` at the keypad
  ("visitor", digits)           ten digits then `#`: a visitor code (anju.lock.visitor);
                                refused as unknown_credential (a wrong code, counted
                                on the PIN input), not_yet_valid, expired, used,
                                revoked, no_clock, list_full (a one-time code whose
                                use cannot be recorded), list_lost (for 30 days after
                                the blocked list's file was found damaged) or locked_out
  `keypad_event` turns what anju.lock.keys.Entry.feed returns into one of these.
  ("remote", action, method, who_id)   a verified LOCK_CTL (see control.apply)
  ("phone", action, cred_id)    an authentic BLE answer (anju.lock.phone) asking to
                                lock (1) or unlock (2) with that phone credential
  ("phone_refused",)            a BLE answer refused before the decision (logged)
  ("inside",)                   inside handle / exit button
  ("mechanical_key",)           the bolt moved without the motor (bolt supervision)
  ("battery", mv)               the battery under load, for the motor's cut-off
  ("tick",)                     a timer: ends lockouts and programming mode

Actions, in the order the shell carries them out:
  ("persist", part)             "seq", "users", "credentials", "settings", "cmd_counter",
                                "visitors" (the blocked list's dump())
  ("send", frame_type, body)    into the persistent queue
  ("alarm", "wrong_code_limit", method)   local warning (buzzer), once per lockout
  ("unlock", method, user, cred_id)       run the bolt (bolt.py); the ACCESS is already queued
  ("lock",)                     throw the bolt (remote lock)
  ("indicate", what)            keypad feedback: "denied", "programming", "added", "refused"
  ("set_clock", device_time)    (control.apply, SET_TIME) set the RTC

The ACCESS is queued before the unlock: an opening is never without its log
line, at the cost of one flash append before the motor starts.

It never logs a digest, a PIN or a UID; it never touches hardware.
"""
import binascii
import struct

from anju import counter
from anju.lock import users, wire

WRONG_WINDOW_S = 300
MIN_LOCKOUT_S = 90
DAY_S = 86400
# 2000-01-01 (device day 0) was a Saturday; Monday is week-day bit 0
_DAY0_WEEKDAY = 5

# inputs that have a wrong-code count, by method
_INPUTS = {wire.M_CARD: 0, wire.M_PIN: 1, wire.M_FINGERPRINT: 2}
_N_INPUTS = 3


class LockConfig:
    """Fixed configuration (config.json `lock`); the hub's SETTINGS go to the state."""

    def __init__(self, max_users=100, max_credentials=200, wrong_limit=5, lockout_s=90,
                 relock_s=0, ajar_s=60, cutoff_mv=4400, programming_s=30, wrap_key=None,
                 visit_key=None):
        if not 1 <= wrong_limit <= 5:
            raise ValueError("wrong_limit must be 1..5")
        if not MIN_LOCKOUT_S <= lockout_s <= 3600:
            raise ValueError("lockout_s must be 90..3600")
        if not 0 <= relock_s <= 3600 or not 10 <= ajar_s <= 3600:
            raise ValueError("relock_s must be 0..3600, ajar_s 10..3600")
        if not 5 <= programming_s <= 120:
            raise ValueError("programming_s must be 5..120")
        self.max_users = max_users
        self.max_credentials = max_credentials
        self.wrong_limit = wrong_limit
        self.lockout_s = lockout_s
        self.relock_s = relock_s
        self.ajar_s = ajar_s
        self.cutoff_mv = cutoff_mv
        self.programming_s = programming_s
        self.wrap_key = wrap_key
        self.visit_key = visit_key  # visitor.visit_key(frame_key); None: no visitor codes


_DEFAULTS = LockConfig()

_FIELDS = ("clock_set", "utc_offset_min", "relock_s", "wrong_limit", "lockout_s", "ajar_s",
           "wrong", "locked_until", "prog_until", "battery_mv", "seq_last", "seq_reserved",
           "cmd_counter", "answer_floor")


class LockState:
    """What the lock remembers between events (RAM). What ("persist", part)
    asks the shell to write (temp file + rename):

    "settings"     `settings_blob(state)`; read back with `load_settings`
    "seq"          `seq_reserved` as a big-endian u32, the same reservation file
                   as anju.counter.FrameCounter's: ACCESS `seq` values are taken
                   with counter.take, and after a reboot the shell starts with
                   seq_last = counter.resume(rtc_value_or_None, reserved), so no
                   log number is used twice
    "cmd_counter"  `cmd_counter`, the last accepted hub counter, as a u32
    "users", "credentials"  the table's dump_users() / dump_credentials()

    The clock flag is not persisted: after a power-on the RTC is unset, and
    the lock waits for the hub's SET_TIME. Lockouts live in RAM only (a lock
    light-sleeps; a power cut ends a lockout)."""

    __slots__ = _FIELDS

    def __init__(self, cfg=None, seq_last=0, seq_reserved=0, cmd_counter=0):
        if cfg is None:
            cfg = _DEFAULTS
        self.clock_set = 0
        self.utc_offset_min = 0
        self.relock_s = cfg.relock_s
        self.wrong_limit = cfg.wrong_limit
        self.lockout_s = cfg.lockout_s
        self.ajar_s = cfg.ajar_s
        self.wrong = [[] for _ in range(_N_INPUTS)]  # times of recent wrong entries
        self.locked_until = [0] * _N_INPUTS          # 0: not locked out
        self.prog_until = 0                          # 0: not in programming mode
        self.battery_mv = None
        self.seq_last = seq_last
        self.seq_reserved = seq_reserved
        self.cmd_counter = cmd_counter
        # the first frame counter of the lock's current check-in: a SET_TIME
        # answering an older frame waited in the broker and is stale
        self.answer_floor = 0

    def copy(self):
        s = LockState(_DEFAULTS)
        for f in _FIELDS:
            setattr(s, f, getattr(self, f))
        s.wrong = [list(w) for w in self.wrong]
        s.locked_until = list(self.locked_until)
        return s

    def shift_time(self, delta):
        """The clock was set: move the running timers with it."""
        for i in range(_N_INPUTS):
            self.wrong[i] = [t + delta for t in self.wrong[i]]
            if self.locked_until[i]:
                self.locked_until[i] += delta
        if self.prog_until:
            self.prog_until += delta


def settings_blob(state):
    """The settings file: u16 relock_s, u8 wrong_limit, u16 lockout_s, u16 ajar_s,
    i16 UTC offset (minutes), u32 CRC-32 of the 9 bytes before it."""
    body = struct.pack(">HBHHh", state.relock_s, state.wrong_limit, state.lockout_s,
                       state.ajar_s, state.utc_offset_min)
    return body + struct.pack(">I", binascii.crc32(body) & 0xFFFFFFFF)


def load_settings(state, blob):
    """Apply a settings file to `state`; False (state unchanged) when it is bad."""
    if blob is None or len(blob) != 13 or \
            binascii.crc32(bytes(blob[:9])) & 0xFFFFFFFF != struct.unpack_from(">I", blob, 9)[0]:
        return False
    relock, limit, lockout, ajar, offset = struct.unpack_from(">HBHHh", blob, 0)
    if relock > 3600 or not 1 <= limit <= 5 or not MIN_LOCKOUT_S <= lockout <= 3600 \
            or not 10 <= ajar <= 3600 or not wire.UTC_OFFSET_MIN <= offset <= wire.UTC_OFFSET_MAX:
        return False
    state.relock_s, state.wrong_limit, state.lockout_s, state.ajar_s = relock, limit, lockout, ajar
    state.utc_offset_min = offset
    return True


# ---- time ---------------------------------------------------------------------

def local_minute_and_weekday(now, utc_offset_min):
    """(minute of the local day 0..1439, week day 0 Monday .. 6 Sunday)."""
    local = now + utc_offset_min * 60
    day = local // DAY_S
    return (local - day * DAY_S) // 60, (day + _DAY0_WEEKDAY) % 7


def in_schedule(days, start_min, end_min, now, utc_offset_min):
    minute, weekday = local_minute_and_weekday(now, utc_offset_min)
    return bool(days & (1 << weekday)) and start_min <= minute < end_min


def locked_out(state, now):
    """True while any input is locked out (LOCK_STATE flag bit2)."""
    for t in state.locked_until:
        if t and now < t:
            return True
    return False


def next_timer(state, now):
    """Seconds until the next lockout or programming mode ends, or None."""
    best = None
    for t in state.locked_until + [state.prog_until]:
        if t:
            d = max(0, t - now)
            if best is None or d < best:
                best = d
    return best


# ---- the decision -------------------------------------------------------------------

def reason_for(table, slot, now, state, cfg):
    """(reason, user, flags) for the credential in `slot`, without the lockout."""
    _, user, _ = table.credential(slot)
    rec = table.user(user)
    if rec is None:
        return wire.R_UNKNOWN_CREDENTIAL, 0, 0
    ustate, utype, days, start, end, frm, until, expire, first = rec
    clock = state.clock_set
    if utype == wire.U_DISABLED or utype == wire.U_PROGRAMMING:
        return wire.R_DISABLED, user, 0
    if frm and (not clock or now < frm):
        return wire.R_NOT_YET_VALID, user, 0
    if until and (not clock or now > until):
        return wire.R_EXPIRED, user, 0
    if utype == wire.U_EXPIRING and (not clock or (
            ustate & users.US_STARTED and now >= first + expire * 60)):
        return wire.R_EXPIRED, user, 0
    if utype == wire.U_ONE_TIME and ustate & users.US_USED:
        return wire.R_USED, user, 0
    if utype == wire.U_WEEK_DAY and (not clock or not in_schedule(days, start, end, now,
                                                                  state.utc_offset_min)):
        return wire.R_OUTSIDE_SCHEDULE, user, 0
    if state.battery_mv is not None and state.battery_mv < cfg.cutoff_mv:
        return wire.R_LOW_BATTERY, user, 0
    return wire.R_OK, user, (wire.AF_DURESS if utype == wire.U_DURESS else 0)


def _access(s, actions, method, reason, flags, user, cid):
    n, reserve = counter.take(s.seq_last, s.seq_reserved)
    if reserve is not None:
        s.seq_reserved = reserve
        actions.append(("persist", "seq"))
    s.seq_last = n
    outcome = wire.UNLOCKED if reason == wire.R_OK else wire.DENIED
    actions.append(("send", wire.T_ACCESS,
                    wire.access_body(method, outcome, reason, flags, user, n, cid)))


def _expire(s, now, actions):
    for i in range(_N_INPUTS):
        t = s.locked_until[i]
        if t and now >= t:
            s.locked_until[i] = 0
            actions.append(("send", wire.T_LOCK_ALARM,
                            wire.lock_alarm_body(wire.ALARM_WRONG_CODE_LIMIT, 0, _method_of(i), 0)))
    if s.prog_until and now >= s.prog_until:
        s.prog_until = 0


def _method_of(i):
    for m, j in _INPUTS.items():
        if j == i:
            return m
    return wire.M_NONE


def _wrong(s, i, method, now, actions):
    """Count a wrong entry on input i (not while it is locked out)."""
    if s.locked_until[i]:
        return
    w = [t for t in s.wrong[i] if now - t <= WRONG_WINDOW_S and t <= now]
    w.append(now)
    if len(w) >= s.wrong_limit:
        s.locked_until[i] = now + s.lockout_s
        actions.append(("send", wire.T_LOCK_ALARM,
                        wire.lock_alarm_body(wire.ALARM_WRONG_CODE_LIMIT, 1, method, len(w))))
        actions.append(("alarm", "wrong_code_limit", method))
        w = []
    s.wrong[i] = w


def _lookup(table, method, data):
    if method == wire.M_FINGERPRINT:
        if data is None:
            return -1
        return table.find(wire.K_FINGERPRINT, wire.fingerprint_data(data))
    if data is None:
        return -1
    return table.find(method, data)


def _credential(s, method, data, now, cfg, table, actions):
    i = _INPUTS.get(method)
    if i is None:
        raise ValueError("no credential input for method %r" % (method,))
    if s.prog_until and method in (wire.M_CARD, wire.M_PIN) and data is not None:
        _enrol(s, method, data, table, actions)
        return
    slot = _lookup(table, method, data)
    if slot < 0:
        _access(s, actions, method, wire.R_UNKNOWN_CREDENTIAL, 0, 0, b"")
        _wrong(s, i, method, now, actions)
        actions.append(("indicate", "denied"))
        return
    cid = table.credential(slot)[2]
    if s.locked_until[i]:
        reason, user, flags = wire.R_LOCKED_OUT, table.credential(slot)[1], 0
    else:
        reason, user, flags = reason_for(table, slot, now, s, cfg)
    _access(s, actions, method, reason, flags, user, cid)
    if reason != wire.R_OK:
        actions.append(("indicate", "denied"))
        return
    s.wrong[i] = []
    rec = table.user(user)
    if rec[1] == wire.U_ONE_TIME:
        table.mark_used(user)
        actions.insert(0, ("persist", "users"))
    elif rec[1] == wire.U_EXPIRING and not rec[0] & users.US_STARTED:
        table.start_expiry(user, now)
        actions.insert(0, ("persist", "users"))
    actions.append(("unlock", method, user, cid))


VISITOR_DIGITS = 10  # anju.lock.visitor.CODE_DIGITS
# anju.lock.visitor's results (OK ... FULL, 0-7) as ACCESS reasons
_VISITOR_REASONS = (wire.R_OK, wire.R_UNKNOWN_CREDENTIAL, wire.R_NO_CLOCK, wire.R_NOT_YET_VALID,
                    wire.R_EXPIRED, wire.R_USED, wire.R_REVOKED, wire.R_LIST_FULL,
                    wire.R_LIST_LOST)


def _visitor(s, digits, now, cfg, blocked, actions):
    """A ten-digit keypad entry: a visitor code (anju.lock.visitor). It shares
    the keypad's wrong-code count with PINs; a genuine code refused for its
    window, its use or a revocation is not a wrong code. Logged as ACCESS
    method visitor with the code's identity (visitor.ident), or none for a
    code that is not one of this lock's. anju.lock.visitor is imported here,
    at the first code: a lock that never sees one never holds it."""
    from anju.lock import visitor
    i = _INPUTS[wire.M_PIN]
    if s.locked_until[i]:
        _access(s, actions, wire.M_VISITOR, wire.R_LOCKED_OUT, 0, 0, b"")
        actions.append(("indicate", "denied"))
        return
    if cfg.visit_key is None or blocked is None:
        res, code = visitor.BAD_CODE, None
    else:
        if s.clock_set:
            blocked.purge(now)  # RAM only: the file is rewritten with the next entry
            if blocked.lost(now):
                actions.append(("persist", "visitors"))  # the 30 days start now, for good
        res, code = visitor.verify(cfg.visit_key, digits, now, s.clock_set, blocked)
        if res == visitor.OK and blocked.refusing(now):
            res = visitor.LOST
    if res == visitor.OK and s.battery_mv is not None and s.battery_mv < cfg.cutoff_mv:
        reason = wire.R_LOW_BATTERY  # not opened: a one-time code stays unspent
    elif res == visitor.OK and code[2]:
        spent = blocked.add(code[0], code[1], code[2], code[3], visitor.F_USED, now)
        reason = _VISITOR_REASONS[spent]
        if spent == visitor.OK:
            actions.insert(0, ("persist", "visitors"))  # spent on flash before it opens
    else:
        reason = _VISITOR_REASONS[res]
    cid = visitor.ident(code[0], code[3]) if code is not None else b""
    _access(s, actions, wire.M_VISITOR, reason, 0, 0, cid)
    if res == visitor.BAD_CODE:
        _wrong(s, i, wire.M_PIN, now, actions)
    if reason != wire.R_OK:
        actions.append(("indicate", "denied"))
        return
    s.wrong[i] = []
    actions.append(("unlock", wire.M_VISITOR, 0, cid))


def phone_key(table, cid):
    """The 16-byte key of phone credential `cid` for the BLE challenge, or None
    (unknown, not a phone key). `cid` as bytes or str."""
    slot = table.find_id(cid.encode() if isinstance(cid, str) else cid)
    if slot < 0 or table.credential(slot)[0] != wire.K_PHONE:
        return None
    return bytes(table.credential_data(slot))


def _phone(s, action, cid, now, cfg, table, actions):
    """An authentic, fresh answer over BLE (anju.lock.phone checked its tag
    with this credential's key): the user's rules decide as for any credential;
    a lock request throws the bolt without an ACCESS (it opens nothing)."""
    if isinstance(cid, str):
        cid = cid.encode()
    slot = table.find_id(cid)
    if slot < 0 or table.credential(slot)[0] != wire.K_PHONE:
        _access(s, actions, wire.M_PHONE, wire.R_UNKNOWN_CREDENTIAL, 0, 0, b"")
        return wire.R_UNKNOWN_CREDENTIAL
    reason, user, flags = reason_for(table, slot, now, s, cfg)
    if action == wire.LOCK_CTL_LOCK and reason == wire.R_OK:
        actions.append(("lock",))
        return reason
    _access(s, actions, wire.M_PHONE, reason, flags, user, cid)
    if reason == wire.R_OK:
        actions.append(("unlock", wire.M_PHONE, user, cid))
    return reason


def _program(s, digest, now, cfg, table, actions):
    slot = table.find(wire.K_PIN, digest)
    user = table.credential(slot)[1] if slot >= 0 else 0
    rec = table.user(user) if user else None
    if rec is None or rec[1] != wire.U_PROGRAMMING:
        # anyone else's PIN typed with `*` ... `#` is just a PIN
        _credential(s, wire.M_PIN, digest, now, cfg, table, actions)
        return
    i = _INPUTS[wire.M_PIN]
    frm, until = rec[5], rec[6]
    if s.locked_until[i]:
        reason = wire.R_LOCKED_OUT
    elif frm and (not s.clock_set or now < frm):
        reason = wire.R_NOT_YET_VALID
    elif until and (not s.clock_set or now > until):
        reason = wire.R_EXPIRED
    else:
        s.wrong[i] = []
        s.prog_until = now + cfg.programming_s
        actions.append(("indicate", "programming"))
        return
    _access(s, actions, wire.M_PIN, reason, 0, user, table.credential(slot)[2])
    actions.append(("indicate", "denied"))


def _enrol(s, method, data, table, actions):
    """Programming mode: the card or PIN presented becomes a new unrestricted user."""
    s.prog_until = 0
    kind = wire.K_CARD if method == wire.M_CARD else wire.K_PIN
    user = table.free_user()
    if user == 0 or table.find(kind, data) >= 0:
        actions.append(("indicate", "refused"))
        return
    cid = ("L:%s:%d" % ("card" if kind == wire.K_CARD else "pin", user)).encode()
    if table.find_id(cid) >= 0:
        actions.append(("indicate", "refused"))
        return
    table.set_user(user, wire.U_UNRESTRICTED)
    if table.set_credential(user, kind, cid, data) != wire.RES_OK:
        table.remove_user(user)  # no free credential slot: leave no empty user behind
        actions.append(("indicate", "refused"))
        return
    actions.append(("persist", "users"))
    actions.append(("persist", "credentials"))
    actions.append(("send", wire.T_LOCAL_CHANGE,
                    wire.local_change_body(wire.OP_USER_ADDED, 0, user, b"")))
    actions.append(("send", wire.T_LOCAL_CHANGE,
                    wire.local_change_body(wire.OP_CREDENTIAL_ADDED, kind, user, cid)))
    actions.append(("indicate", "added"))


def keypad_event(entry, ckey):
    """The event for a finished keypad entry ("pin" | "program", digits): ten
    digits ending in `#` are a visitor code (PINs have 4-8)."""
    kind, digits = entry
    if kind == "pin" and len(digits) == VISITOR_DIGITS:
        return ("visitor", digits)
    try:
        digest = wire.pin_digest(ckey, digits)
    except ValueError:
        digest = None  # 1-3 or 9+ digits: can never match, counts as wrong
    if kind == "program":
        return ("program", digest)
    return ("credential", wire.M_PIN, digest)


def handle(state, event, now, cfg, table, blocked=None):
    """Apply one event at device time `now`; return (state, actions).
    `blocked` is the visitor codes' blocked list (anju.lock.visitor.Blocked),
    changed in place like the table; needed for ("visitor", ...) only."""
    kind = event[0]
    s = state.copy()
    actions = []
    _expire(s, now, actions)
    if kind == "credential":
        _credential(s, event[1], event[2], now, cfg, table, actions)
    elif kind == "program":
        _program(s, event[1], now, cfg, table, actions)
    elif kind == "visitor":
        _visitor(s, event[1], now, cfg, blocked, actions)
    elif kind == "remote":
        _, action, method, who = event
        if action == wire.LOCK_CTL_LOCK:
            actions.append(("lock",))
        elif s.battery_mv is not None and s.battery_mv < cfg.cutoff_mv:
            _access(s, actions, method, wire.R_LOW_BATTERY, 0, 0, who)
        else:
            _access(s, actions, method, wire.R_OK, 0, 0, who)
            actions.append(("unlock", method, 0, who))
    elif kind == "phone":
        _phone(s, event[1], event[2], now, cfg, table, actions)
    elif kind == "phone_refused":
        # an answer that failed before any decision: an unknown or revoked
        # phone, a wrong key, a replayed or late answer (its id is unproven)
        _access(s, actions, wire.M_PHONE, wire.R_UNKNOWN_CREDENTIAL, 0, 0, b"")
    elif kind == "inside":
        _access(s, actions, wire.M_INSIDE, wire.R_OK, 0, 0, b"")
        actions.append(("unlock", wire.M_INSIDE, 0, b""))
    elif kind == "mechanical_key":
        _access(s, actions, wire.M_MECHANICAL_KEY, wire.R_OK, 0, 0, b"")
    elif kind == "battery":
        s.battery_mv = event[1]
    elif kind != "tick":
        raise ValueError("unknown event %r" % (kind,))
    return s, actions
