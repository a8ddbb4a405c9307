"""A verified hub command applied to the lock: `apply(state, cmd, now, cfg, table)`.

`cmd` is what `wire.verify_command` returned (authentic, fresh, in range).
Returns (state, actions) in the form of `decide.handle`. The first action is
always ("persist", "cmd_counter"): the counter reaches flash before anything
the command causes, so a command is never carried out twice. Then, for a
command inside its time (`wire.timed_result`): the table or settings change
and their ("persist", part), the ("send", CMD_RESULT, body) confirming it,
and for LOCK_CTL what `decide.handle` does with ("remote", ...): the ACCESS it
logs and the ("unlock", ...) or ("lock",).

Results (CMD_RESULT): expired / no_clock (timed invoke), bad_value (a user
beyond `max_users`, a face or a phone key the lock cannot take), unknown_user,
unknown_credential, duplicate, full. VISITOR_REVOKE puts the code on the
blocked list (`blocked`, anju.lock.visitor.Blocked, changed in place; its
("persist", "visitors") comes before the CMD_RESULT) and is answered ok, or
full when the list has no room; its credential id is the code's identity. A LOCK_CTL is confirmed ok when the lock
acted on it; its ACCESS says whether it opened (low_battery is an ACCESS
denial). A jam is reported by bolt supervision (LOCK_ALARM jammed); a shell
that waits for the bolt before confirming may send `wire.RES_JAMMED` instead.

Pure apart from the table, which it changes in place. It never logs a key
or credential data.
"""
from anju.lock import decide, wire


def apply(state, cmd, now, cfg, table, blocked=None):
    s = state.copy()
    s.cmd_counter = cmd.counter
    actions = [("persist", "cmd_counter")]
    result = wire.timed_result(cmd, now, s.clock_set)
    user = 0
    cid = b""
    follow = None
    t = cmd.type
    a = cmd.args
    if result != wire.RES_OK:
        if t in (wire.T_USER_SET, wire.T_USER_REMOVE, wire.T_CRED_SET):
            user = a[0]
        if t == wire.T_CRED_SET:
            cid = a[2]
        elif t == wire.T_CRED_REMOVE:
            cid = a[0]
        elif t == wire.T_LOCK_CTL:
            cid = a[2]
        elif t == wire.T_VISITOR_REVOKE:
            from anju.lock import visitor
            cid = visitor.ident(a[0], a[3])
    elif t == wire.T_LOCK_CTL:
        cid = a[2]
        follow = ("remote", a[0], a[1], a[2])
    elif t == wire.T_USER_SET:
        user = a[0]
        result = table.set_user(*a)
        if result == wire.RES_OK:
            actions.append(("persist", "users"))
    elif t == wire.T_USER_REMOVE:
        user = a[0]
        result, gone = table.remove_user(user)
        if result == wire.RES_OK:
            actions.append(("persist", "users"))
            if gone:
                actions.append(("persist", "credentials"))
    elif t == wire.T_CRED_SET:
        user, kind, cid, data = a
        if kind == wire.K_PHONE:
            if cfg.wrap_key is None:
                data = None
            else:
                data = wire.unwrap_phone_key(cfg.wrap_key, data)
        if data is None:
            result = wire.RES_BAD_VALUE
        else:
            result = table.set_credential(user, kind, cid, data)
        if result == wire.RES_OK:
            actions.append(("persist", "credentials"))
    elif t == wire.T_CRED_REMOVE:
        cid = a[0]
        result, user = table.remove_credential(cid)
        if result == wire.RES_OK:
            actions.append(("persist", "credentials"))
    elif t == wire.T_SET_TIME and a[1] < s.answer_floor:
        result = wire.RES_EXPIRED  # it answers an earlier check-in: its time is old
    elif t == wire.T_SET_TIME:
        s.shift_time(cmd.time - now)
        s.clock_set = 1
        s.utc_offset_min = a[0]
        actions.append(("set_clock", cmd.time))
        actions.append(("persist", "settings"))
    elif t == wire.T_SETTINGS:
        s.relock_s, s.wrong_limit, s.lockout_s, s.ajar_s = a
        actions.append(("persist", "settings"))
    elif t == wire.T_VISITOR_REVOKE:
        from anju.lock import visitor  # here: a lock never sent one never holds it
        start, d, ot, check = a
        cid = visitor.ident(start, check)
        if blocked is None:
            result = wire.RES_BAD_VALUE  # a lock built without visitor codes
        elif now >= visitor.ends(start, d):
            result = wire.RES_OK  # its window has ended: the code opens nothing any more
        elif blocked.add(start, d, ot, check, visitor.F_REVOKED, now) == visitor.OK:
            actions.append(("persist", "visitors"))
        else:
            result = wire.RES_FULL
    else:
        raise ValueError("not a lock command: 0x%02x" % t)
    actions.append(("send", wire.T_CMD_RESULT,
                    wire.cmd_result_body(cmd.counter, t, result, user, cid)))
    if follow is not None:
        s, more = decide.handle(s, follow, now, cfg, table, blocked)
        actions.extend(more)
    return s, actions
