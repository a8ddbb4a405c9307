"""The store's record of lock commands, users, credentials and state.

Requested is not confirmed. A command is a row of `lock_commands`
(device, the hub's counter, type, user, credential id, requested at, by
whom) that goes `queued` → `sent` (after the broker's PUBACK, its body then
dropped) → `ok` or `failed` (the lock's CMD_RESULT for that counter, or
`not_sent` when it could not be published within its valid_s). A credential
of `lock_credentials` is `pending` until the lock answered its CRED_SET with
ok (`active`; any other result: `failed` with the reason), `removing` until
its CRED_REMOVE is confirmed (`removed`). A credential the lock reports as
added at the lock (LOCAL_CHANGE) is recorded with source `lock` and no
resident. The lock's reported state (LOCK_STATE) is kept in rule state
`lock/state:<device>`.

Every function runs inside the caller's store transaction (`tx`), so a
command is stored, with its counter, before anything is published, and a
confirmation is stored with the frame that carried it. Never stores a PIN, a
card UID or a phone key: only the body the lock needs (a digest, a wrapped
key) until it has been handed to the broker.
"""
import zoneinfo
import datetime

from hub.forward import device_commands
from hub.locks import LockError, wire
from hub.visitors import passcode

RULE = "lock"  # rule_state namespace: state:<device>, cred_seq, timesync:<device>
COMMAND_KEYS = ("device", "counter", "type", "command", "user", "credential", "requested_at",
                "requested_by", "valid_s", "state", "result", "sent_at", "done_at")
USER_KEYS = ("device", "user", "resident", "type", "state", "updated_at")
CRED_KEYS = ("device", "credential", "kind", "user", "resident", "source", "state", "reason",
             "updated_at")
OPEN_STATES = ("queued", "sent")


def _lock(site, device_id):
    dev = site.devices.get(device_id)
    if dev is None or dev.kind != "smart_lock":
        raise LockError("no smart lock %s" % device_id)
    if dev.frame_key is None:
        raise LockError("lock %s has no frame_key" % device_id)
    return dev


def queue(tx, site, device_id, mtype, body, now, by, user=None, credential=None):
    """Store a command for `device_id` with its counter (allocated and stored
    here, before any publish); returns the command as a dict."""
    _lock(site, device_id)
    if len(body) != wire.BODY_LEN[mtype]:
        raise LockError("%s body is %d bytes, not %d" % (wire.NAMES[mtype], len(body),
                                                          wire.BODY_LEN[mtype]))
    counter = device_commands.allocate_counter(tx, device_id, now)
    tx.execute("INSERT INTO lock_commands(device_id, counter, type, name, user, credential,"
               " requested_at, requested_by, valid_s, body, state) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
               (device_id, counter, mtype, wire.NAMES[mtype], user, credential, now, by,
                wire.valid_s_of(mtype, body), bytes(body), "queued"))
    return command(tx, device_id, counter)


def command(tx, device_id, counter):
    rows = tx.query("SELECT device_id, counter, type, name, user, credential, requested_at,"
                    " requested_by, valid_s, state, result, sent_at, done_at FROM lock_commands"
                    " WHERE device_id=? AND counter=?", (device_id, counter))
    return dict(zip(COMMAND_KEYS, rows[0])) if rows else None


def commands(tx, device_id, open_only=False, limit=100):
    q = ("SELECT device_id, counter, type, name, user, credential, requested_at, requested_by,"
         " valid_s, state, result, sent_at, done_at FROM lock_commands WHERE device_id=?")
    if open_only:
        q += " AND state IN ('queued', 'sent')"
    rows = tx.query(q + " ORDER BY counter DESC LIMIT ?", (device_id, int(limit)))
    return [dict(zip(COMMAND_KEYS, r)) for r in rows]


def queued(tx):
    """[(device, counter, type, body, requested_at, valid_s)] waiting to be published,
    in counter order per device."""
    return tx.query("SELECT device_id, counter, type, body, requested_at, valid_s FROM"
                    " lock_commands WHERE state='queued' ORDER BY device_id, counter")


def mark_sent(tx, device_id, counter, now):
    tx.execute("UPDATE lock_commands SET state='sent', sent_at=?, body=NULL WHERE device_id=?"
               " AND counter=? AND state='queued'", (now, device_id, counter))


def mark_not_sent(tx, device_id, counter, now, reason="not_sent"):
    cmd = command(tx, device_id, counter)
    tx.execute("UPDATE lock_commands SET state='failed', result=?, done_at=?, body=NULL"
               " WHERE device_id=? AND counter=?", (reason, now, device_id, counter))
    if cmd is not None:
        _settle(tx, cmd, reason, now)


# ---- what the lock reports ------------------------------------------------------
def apply_result(tx, device_id, values, now):
    """A CMD_RESULT: settle the command with that counter (and what it changes).
    Returns the command, or None when the hub has no record of it."""
    cmd = command(tx, device_id, values["command_counter"])
    if cmd is None or cmd["state"] in ("ok", "failed"):
        return None  # not ours, or already settled (a repeated result)
    result = values["result"]
    tx.execute("UPDATE lock_commands SET state=?, result=?, done_at=?, body=NULL"
               " WHERE device_id=? AND counter=?",
               ("ok" if result == "ok" else "failed", result, now, device_id, cmd["counter"]))
    _settle(tx, cmd, result, now)
    return command(tx, device_id, cmd["counter"])


def _settle(tx, cmd, result, now):
    device_id, name = cmd["device"], cmd["command"]
    ok = result == "ok"
    if name == "cred_set" and cmd["credential"]:
        _cred_state(tx, device_id, cmd["credential"], "active" if ok else "failed",
                    None if ok else result, now)
    elif name == "cred_remove" and cmd["credential"]:
        # a credential the lock does not know is gone all the same
        gone = ok or result == "unknown_credential"
        _cred_state(tx, device_id, cmd["credential"], "removed" if gone else "active",
                    None if gone else "remove failed: %s" % result, now)
    elif name == "user_set" and cmd["user"]:
        _user_state(tx, device_id, cmd["user"], "active" if ok else "failed", now)
    elif name == "visitor_revoke" and cmd["credential"]:
        _revoke_settled(tx, cmd, result, now)
    elif name == "user_remove" and cmd["user"] and (ok or result == "unknown_user"):
        _user_state(tx, device_id, cmd["user"], "removed", now)
        tx.execute("UPDATE lock_credentials SET state='removed', updated_at=? WHERE device_id=?"
                   " AND user=? AND state != 'removed'", (now, device_id, cmd["user"]))


def _cred_state(tx, device_id, credential, state, reason, now):
    tx.execute("UPDATE lock_credentials SET state=?, reason=?, updated_at=? WHERE device_id=?"
               " AND credential=?", (state, reason, now, device_id, credential))


def _user_state(tx, device_id, user, state, now):
    tx.execute("UPDATE lock_users SET state=?, updated_at=? WHERE device_id=? AND user=?",
               (state, now, device_id, user))


def apply_local_change(tx, device_id, values, now):
    """A LOCAL_CHANGE: a credential or user added or removed at the lock."""
    op, cred, user = values["op"], values["credential"], values["user"]
    if op == "credential_added":
        tx.execute("INSERT OR REPLACE INTO lock_credentials(device_id, credential, kind, user,"
                   " resident_id, source, state, reason, updated_at) VALUES(?,?,?,?,?,?,?,?,?)",
                   (device_id, cred, values["kind"], user, None, "lock", "active", None, now))
    elif op == "credential_removed":
        _cred_state(tx, device_id, cred, "removed", "removed at the lock", now)
    elif op == "user_added" and user:
        tx.execute("INSERT OR IGNORE INTO lock_users(device_id, user, resident_id, type, state,"
                   " updated_at) VALUES(?,?,?,?,?,?)", (device_id, user, None, None, "active",
                                                        now))
    elif op == "user_removed" and user:
        _user_state(tx, device_id, user, "removed", now)
        tx.execute("UPDATE lock_credentials SET state='removed', updated_at=? WHERE device_id=?"
                   " AND user=? AND state != 'removed'", (now, device_id, user))


def apply_state(tx, device_id, values, now):
    """A LOCK_STATE: the lock's bolt, door, flags, battery and operations left."""
    st = {k: values[k] for k in ("bolt", "door", "case_open", "battery_low", "locked_out",
                                 "clock_set", "percent", "millivolts", "queued", "ops_left")}
    st["updated_at"] = now
    tx.rule_set(RULE, "state:" + device_id, st)


def lock_state(store, device_id):
    """The lock's last reported state, or None when it never reported one."""
    return store.rule_get(RULE, "state:" + device_id)


# ---- users and credentials ------------------------------------------------------
def users(tx, device_id):
    rows = tx.query("SELECT device_id, user, resident_id, type, state, updated_at FROM lock_users"
                    " WHERE device_id=? ORDER BY user", (device_id,))
    return [dict(zip(USER_KEYS, r)) for r in rows]


def credentials(tx, device_id, include_removed=False):
    q = ("SELECT device_id, credential, kind, user, resident_id, source, state, reason, updated_at"
         " FROM lock_credentials WHERE device_id=?")
    if not include_removed:
        q += " AND state != 'removed'"
    return [dict(zip(CRED_KEYS, r)) for r in tx.query(q + " ORDER BY credential", (device_id,))]


def credential(tx, device_id, credential_id):
    rows = tx.query("SELECT device_id, credential, kind, user, resident_id, source, state, reason,"
                    " updated_at FROM lock_credentials WHERE device_id=? AND credential=?",
                    (device_id, credential_id))
    return dict(zip(CRED_KEYS, rows[0])) if rows else None


def holder(tx, device_id, credential_id):
    """The resident the hub provisioned `credential_id` for on this lock, when
    the lock confirmed it (None otherwise)."""
    rows = tx.query("SELECT resident_id FROM lock_credentials WHERE device_id=? AND credential=?"
                    " AND state IN ('active', 'removing') AND source='hub'",
                    (device_id, credential_id))
    return rows[0][0] if rows else None


def _user_for(tx, device_id, resident_id, user_type="unrestricted"):
    """The resident's user of that type on this lock (not removed or failed),
    or None. A resident has one user per type: her duress PIN or her
    programming PIN is another user than her everyday card."""
    rows = tx.query("SELECT user FROM lock_users WHERE device_id=? AND resident_id=? AND type=?"
                    " AND state IN ('pending', 'active') ORDER BY user LIMIT 1",
                    (device_id, resident_id, user_type))
    return rows[0][0] if rows else None


def _free_user(tx, device_id):
    used = {r[0] for r in tx.query("SELECT user FROM lock_users WHERE device_id=? AND state"
                                   " != 'removed'", (device_id,))}
    user = 1
    while user in used:
        user += 1
    if user > wire.MAX_USER:
        raise LockError("lock %s has no free user index" % device_id)
    return user


def _next_credential_id(tx):
    n = tx.rule_get(RULE, "cred_seq", 0) + 1
    tx.rule_set(RULE, "cred_seq", n)
    return "c-%d" % n


def _local_time(site, value):
    """An ISO date (site time zone, start of that day) -> a device time, 0 for None."""
    if value is None:
        return 0
    day = value if isinstance(value, datetime.date) else datetime.date.fromisoformat(str(value))
    at = datetime.datetime.combine(day, datetime.time(), zoneinfo.ZoneInfo(site.timezone))
    return device_commands.device_time(at.timestamp())


USER_TYPES = ("unrestricted", "week_day_schedule", "year_day_window", "one_time", "expiring",
              "duress", "programming")
WEEK_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _minute(value, what):
    """'HH:MM' -> minutes of the day (24:00 is the end of the day)."""
    try:
        h, m = str(value).split(":")
        minute = int(h) * 60 + int(m)
        if not (len(m) == 2 and 0 <= int(m) < 60 and 0 <= minute <= 1440):
            raise ValueError
    except ValueError:
        raise LockError("schedule.%s must be HH:MM (00:00-24:00), got %r" % (what, value)) from None
    return minute


def schedule_fields(site, resident, user_type, schedule):
    """USER_SET's schedule fields for a resident's user of `user_type`: her
    registration dates as from/until (a `from`/`until` in `schedule` may only
    narrow them), week days and minutes for a week_day_schedule, expire_min
    for an expiring user. LockError names the field that is wrong."""
    schedule = dict(schedule or {})
    unknown = sorted(set(schedule) - {"days", "start", "end", "from", "until", "expire_min"})
    if unknown:
        raise LockError("schedule.%s: unknown; known: days, start, end, from, until, expire_min"
                        % unknown[0])
    out = {"valid_from": _local_time(site, resident.valid_from),
           "valid_until": _until(site, resident.valid_until)}
    try:
        if "from" in schedule:
            out["valid_from"] = max(out["valid_from"], _local_time(site, schedule["from"]))
        if "until" in schedule:
            end = _until(site, schedule["until"])
            out["valid_until"] = end if not out["valid_until"] else min(out["valid_until"], end)
    except ValueError:
        raise LockError("schedule.from and schedule.until are dates, YYYY-MM-DD") from None
    if out["valid_from"] and out["valid_until"] and out["valid_until"] <= out["valid_from"]:
        raise LockError("schedule.until must be after schedule.from (and her registration's)")
    if user_type == "week_day_schedule":
        days = schedule.get("days")
        if not isinstance(days, list) or not days or any(d not in WEEK_DAYS for d in days):
            raise LockError("schedule.days: a list of %s" % ", ".join(WEEK_DAYS))
        out["week_days"] = sum(1 << WEEK_DAYS.index(d) for d in set(days))
        out["start_min"] = _minute(schedule.get("start", "00:00"), "start")
        out["end_min"] = _minute(schedule.get("end", "24:00"), "end")
        if out["start_min"] >= out["end_min"]:
            raise LockError("schedule.start must be before schedule.end")
    elif "days" in schedule or "start" in schedule or "end" in schedule:
        raise LockError("schedule.days/start/end are for a week_day_schedule user")
    if user_type == "expiring":
        exp = schedule.get("expire_min")
        if isinstance(exp, bool) or not isinstance(exp, int) or not 1 <= exp <= 0xFFFF:
            raise LockError("schedule.expire_min: minutes after the first use, 1-65535")
        out["expire_min"] = exp
    elif "expire_min" in schedule:
        raise LockError("schedule.expire_min is for an expiring user")
    if user_type == "year_day_window" and not (out["valid_from"] and out["valid_until"]):
        raise LockError("a year_day_window user needs from and until (her registration's or "
                        "schedule.from/until)")
    return out


def add_credential(tx, site, device_id, resident_id, kind, secret, now, by,
                   user_type="unrestricted", schedule=None):
    """Provision a credential for a resident on a lock: a USER_SET for the
    resident's user of `user_type` on that lock (when it has none yet:
    unrestricted, or `duress` for a PIN that opens and raises a silent duress
    alarm, or `programming` for the PIN that lets her add a credential at the
    lock itself, which the hub then sees as belonging to nobody) and a CRED_SET. The
    credential is `pending` until the lock confirms it. `secret`: the card
    UID (bytes), the PIN digits (str), the 16-byte phone key or a fingerprint
    template id. Returns (credential record, [commands])."""
    dev = _lock(site, device_id)
    resident = site.residents.get(resident_id)
    if resident is None:
        raise LockError("no resident %s" % resident_id)
    if dev.flat is not None and resident.flat != dev.flat:
        raise LockError("resident %s does not live in flat %s of lock %s"
                        % (resident_id, dev.flat, device_id))
    if kind == "card":
        data = wire.card_digest(dev.frame_key, secret)
    elif kind == "pin":
        data = wire.pin_digest(dev.frame_key, secret)
    elif kind == "phone":
        data = wire.wrap_phone_key(dev.frame_key, secret)
    elif kind == "fingerprint":
        data = secret
    else:
        raise LockError("credential kind must be card, pin, phone or fingerprint")
    if user_type not in USER_TYPES:
        raise LockError("user_type must be one of %s" % ", ".join(USER_TYPES))
    fields = schedule_fields(site, resident, user_type, schedule)
    out = []
    user = _user_for(tx, device_id, resident_id, user_type)
    if user is None:
        user = _free_user(tx, device_id)
        body = wire.user_set(user, user_type, **fields)
        tx.execute("INSERT OR REPLACE INTO lock_users(device_id, user, resident_id, type, state,"
                   " updated_at) VALUES(?,?,?,?,?,?)", (device_id, user, resident_id,
                                                        user_type, "pending", now))
        out.append(queue(tx, site, device_id, wire.T_USER_SET, body, now, by, user=user))
    cred = _next_credential_id(tx)
    body = wire.cred_set(user, kind, cred, data)
    tx.execute("INSERT INTO lock_credentials(device_id, credential, kind, user, resident_id,"
               " source, state, reason, updated_at) VALUES(?,?,?,?,?,?,?,?,?)",
               (device_id, cred, kind, user, resident_id, "hub", "pending", None, now))
    out.append(queue(tx, site, device_id, wire.T_CRED_SET, body, now, by, user=user,
                     credential=cred))
    return credential(tx, device_id, cred), out


def local_midnight(site, day, days_after=0):
    """The start of `day` (+ `days_after`) in the site's time zone, epoch s."""
    if not isinstance(day, datetime.date):
        day = datetime.date.fromisoformat(str(day))
    day = day + datetime.timedelta(days=days_after)
    return datetime.datetime(day.year, day.month, day.day,
                             tzinfo=zoneinfo.ZoneInfo(site.timezone)).timestamp()


def live_hub_credentials(tx):
    """Credentials the hub provisioned for a resident that are on a lock or on
    their way there (pending or active)."""
    rows = tx.query("SELECT device_id, credential, resident_id FROM lock_credentials WHERE"
                    " source='hub' AND resident_id IS NOT NULL AND state IN ('pending', 'active')")
    return [{"device": d, "credential": c, "resident": r} for d, c, r in rows]


def _until(site, value):
    """The end of the last day (inclusive) as a device time, 0 for None."""
    if value is None:
        return 0
    day = value if isinstance(value, datetime.date) else datetime.date.fromisoformat(str(value))
    return _local_time(site, day + datetime.timedelta(days=1))


def remove_credential(tx, site, device_id, credential_id, now, by):
    _lock(site, device_id)
    rec = credential(tx, device_id, credential_id)
    if rec is None or rec["state"] == "removed":
        raise LockError("lock %s has no credential %s" % (device_id, credential_id))
    cmd = queue(tx, site, device_id, wire.T_CRED_REMOVE, wire.cred_remove(credential_id), now,
                by, user=rec["user"], credential=credential_id)
    _cred_state(tx, device_id, credential_id, "removing", None, now)
    return credential(tx, device_id, credential_id), cmd


OPERATOR_PREFIX = "op-"


def lock_ctl(tx, site, device_id, action, now, by, method="remote", who=None, valid_s=60):
    """A LOCK_CTL. Without `who` (an operator's remote command) the hub issues
    its own who-id, `op-<n>`, which the lock logs in the ACCESS it causes; see
    `operator_command`."""
    if who is None:
        n = tx.rule_get(RULE, "op_seq", 0) + 1
        tx.rule_set(RULE, "op_seq", n)
        who = "%s%d" % (OPERATOR_PREFIX, n)
    elif who.startswith(OPERATOR_PREFIX):
        raise LockError("who-ids starting with %s are the hub's own" % OPERATOR_PREFIX)
    body = wire.lock_ctl(action, method, who, valid_s=valid_s)
    return queue(tx, site, device_id, wire.T_LOCK_CTL, body, now, by, credential=who)


def operator_command(tx, device_id, who):
    """The hub's LOCK_CTL on this lock that issued the who-id `who` (an
    operator's remote command), or None."""
    if not who or not who.startswith(OPERATOR_PREFIX):
        return None
    rows = tx.query("SELECT counter FROM lock_commands WHERE device_id=? AND name='lock_ctl'"
                    " AND credential=? AND state IN ('sent', 'ok')", (device_id, who))
    return command(tx, device_id, rows[0][0]) if rows else None


def utc_offset_min(site, now):
    off = datetime.datetime.fromtimestamp(now, zoneinfo.ZoneInfo(site.timezone)).utcoffset()
    return int(off.total_seconds() // 60)


def set_time(tx, site, device_id, now, answers, by="hub:clock"):
    return queue(tx, site, device_id, wire.T_SET_TIME,
                 wire.set_time(utc_offset_min(site, now), answers),
                 now, by)


# ---- visitor codes ----------------------------------------------------------------
# A revocation is wanted until the lock confirms it or the code's window ends:
# rule state `visit_revoke:<device>:<identity>` holds the code's fields and
# its state (`requested`, `confirmed`, `failed` with the lock's reason). A
# command the lock refused for its time (expired: it waited too long in the
# broker for a lock that was away; no_clock) or that could not be published
# in time (not_sent) is queued again with a fresh time, so the code is
# blocked at the lock's next contact, however long it was offline.
REVOKE_RETRY = ("expired", "no_clock", "not_sent")


def _revoke_key(device_id, identity):
    return "visit_revoke:%s:%s" % (device_id, identity)


def revoke_visitor_code(tx, site, device_id, digits, now, by, valid_s=600):
    """Queue VISITOR_REVOKE for the visitor code `digits` (its ten digits) on
    `device_id`. LockError names the field: `digits` for a code that is not
    this lock's or whose window has ended. Returns (revocation, command)."""
    dev = _lock(site, device_id)
    try:
        code = passcode.resolve(dev.frame_key, digits, now)
    except passcode.CodeError as exc:
        raise LockError("%s: %s" % (exc.field, exc)) from exc
    identity = passcode.ident(code.start_slot, code.check)
    rec = {"device": device_id, "code": identity, "start_slot": code.start_slot,
           "duration_index": code.duration_index, "one_time": code.one_time,
           "check": code.check, "valid_from": code.valid_from,
           "valid_until": code.valid_until, "state": "requested", "result": None,
           "requested_at": now, "requested_by": by}
    tx.rule_set(RULE, _revoke_key(device_id, identity), rec)
    return rec, _queue_revoke(tx, rec, now, by, valid_s)


def _queue_revoke(tx, rec, now, by, valid_s=600):
    body = wire.visitor_revoke(rec["start_slot"], rec["duration_index"], rec["one_time"],
                               rec["check"], valid_s=valid_s)
    counter = device_commands.allocate_counter(tx, rec["device"], now)
    tx.execute("INSERT INTO lock_commands(device_id, counter, type, name, user, credential,"
               " requested_at, requested_by, valid_s, body, state) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
               (rec["device"], counter, wire.T_VISITOR_REVOKE, wire.NAMES[wire.T_VISITOR_REVOKE],
                None, rec["code"], now, by, valid_s, body, "queued"))
    return command(tx, rec["device"], counter)


def _revoke_settled(tx, cmd, result, now):
    key = _revoke_key(cmd["device"], cmd["credential"])
    rec = tx.rule_get(RULE, key)
    if rec is None or rec["state"] == "confirmed":
        return
    if result == "ok":
        rec.update(state="confirmed", result="ok", confirmed_at=now)
    elif result in REVOKE_RETRY and now < rec["valid_until"]:
        rec["result"] = result  # still wanted: again, with a fresh time
        _queue_revoke(tx, rec, now, cmd["requested_by"])
    else:
        rec.update(state="failed", result=result)
    tx.rule_set(RULE, key, rec)


def visitor_revocation(store, device_id, identity):
    """The revocation of the code with that identity on this lock, or None."""
    return store.rule_get(RULE, _revoke_key(device_id, identity))
