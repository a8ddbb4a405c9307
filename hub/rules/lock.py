"""Smart-lock rules beyond the access rules of hub/rules/access.py
(docs/rules.md; frames in hub/verify/frames_lock.py).

* `lock` (no alarm): records what the lock reports, in the frame's own
  transaction — LOCK_STATE as the lock's state, CMD_RESULT as the
  confirmation (or failure) of the command with that counter, LOCAL_CHANGE as
  a credential or user changed at the lock (hub/locks/book.py) — and queues a
  SET_TIME for a lock whose frames carry no clock (device_time 0, or the
  LOCK_STATE "clock set" flag clear) or a clock more than 60 s off the hub's,
  at most once per `TIME_SYNC_EVERY_S` per lock.
* `duress`: an ACCESS with the duress flag → critical alarm (the lock shows a
  normal opening; nobody at the door must notice).
* `lock_wrong_code`: LOCK_ALARM wrong_code_limit raised.
* `lock_jammed`: LOCK_ALARM jammed raised, or LOCK_STATE with the bolt jammed.
* `door_ajar`: LOCK_ALARM door_ajar raised.
* `lock_tenancy` (no alarm): a tenancy that has ended (the resident's `until`
  day passed in the site's time zone, or `registered: false`) removes the
  credentials the hub provisioned for that resident from every lock
  (CRED_REMOVE; the lock confirms). The lock refuses them after `until` on
  its own, offline too: the hub sent the dates with the user.

One open alarm per lock and cause; a cleared LOCK_ALARM changes nothing (a
person resolves the alarm). Never judges a frame from a device that is not a
smart lock.
"""
from hub.alarms import documents as alarms
from hub.forward import device_commands
from hub.locks import book
from hub.rules.engine import Trigger

TIME_SYNC_MAX_S = 60
TIME_SYNC_EVERY_S = 300


def clock_off(device_time_mp, received_at, clock_set=True):
    """Whether a frame shows a lock clock that needs setting."""
    if not device_time_mp or not clock_set:
        return True
    return abs(device_time_mp + device_commands.MP_EPOCH_OFFSET - received_at) > TIME_SYNC_MAX_S


class LockRecordRule:
    name = "lock"

    def __init__(self, site):
        self.site = site

    def on_event(self, ctx, event):
        dev = event.device
        if dev.kind != "smart_lock":
            return []
        r = event.reading
        if r.type == "lock_state":
            book.apply_state(ctx.tx, dev.id, r.values, ctx.now)
        elif r.type == "cmd_result":
            book.apply_result(ctx.tx, dev.id, r.values, ctx.now)
        elif r.type == "local_change":
            book.apply_local_change(ctx.tx, dev.id, r.values, ctx.now)
        if r.transport == "mqtt" and r.type != "cmd_result":
            # a lock answering SET_TIME is not asked again by that answer
            self._time_sync(ctx, dev, r, event.received_at)
        return []

    def _time_sync(self, ctx, dev, r, received_at):
        clock_set = r.values.get("clock_set", True) if r.type == "lock_state" else True
        if dev.frame_key is None or not clock_off(r.device_time, received_at, clock_set):
            return
        key = "timesync:" + dev.id
        last = ctx.tx.rule_get(book.RULE, key)
        if last is not None and ctx.now - last < TIME_SYNC_EVERY_S:
            return
        ctx.tx.rule_set(book.RULE, key, ctx.now)
        book.set_time(ctx.tx, self.site, dev.id, ctx.now, r.counter)

    def on_time(self, ctx, now):
        return []

    def next_deadline(self, ctx):
        return None


class _LockAlarmRule:
    """One alarm type per lock from the lock's own reports."""
    name = None
    severity = "medium"

    def __init__(self, site):
        self.site = site

    def matches(self, reading):
        raise NotImplementedError

    def on_event(self, ctx, event):
        dev = event.device
        if dev.kind != "smart_lock" or not self.matches(event.reading):
            return []
        if not ctx.settings(self.name, dev.flat)["enabled"]:
            return []
        r = event.reading
        detail = dict(r.values, report=r.type, counter=r.counter)
        doc = alarms.device_alarm(self.site, self.name, self.severity, dev, detail, ctx.now)
        return [Trigger("%s:%s" % (self.name, dev.id), doc)]

    def on_time(self, ctx, now):
        return []

    def next_deadline(self, ctx):
        return None


def _lock_alarm(reading, kind):
    return (reading.type == "lock_alarm" and reading.values["alarm"] == kind
            and reading.values["active"])


class DuressRule(_LockAlarmRule):
    name = "duress"
    severity = "critical"

    def matches(self, reading):
        return reading.type == "access" and bool(reading.values.get("duress"))


class WrongCodeRule(_LockAlarmRule):
    name = "lock_wrong_code"
    severity = "medium"

    def matches(self, reading):
        return _lock_alarm(reading, "wrong_code_limit")


class JammedRule(_LockAlarmRule):
    name = "lock_jammed"
    severity = "medium"

    def matches(self, reading):
        return _lock_alarm(reading, "jammed") or (
            reading.type == "lock_state" and reading.values["bolt"] == "jammed")


class DoorAjarRule(_LockAlarmRule):
    name = "door_ajar"
    severity = "low"

    def matches(self, reading):
        return _lock_alarm(reading, "door_ajar")


class TenancyEndRule:
    name = "lock_tenancy"

    def __init__(self, site):
        self.site = site

    def _ends(self, resident):
        """When the resident's registration ends (epoch s), None if never;
        0 when it has ended already (not registered)."""
        if not resident.registered:
            return 0
        if resident.valid_until is None:
            return None
        return book.local_midnight(self.site, resident.valid_until, days_after=1)

    def on_event(self, ctx, event):
        return []

    def on_time(self, ctx, now):
        for rec in book.live_hub_credentials(ctx.tx):
            r = self.site.residents.get(rec["resident"])
            end = 0 if r is None else self._ends(r)
            if end is not None and end <= now:
                book.remove_credential(ctx.tx, self.site, rec["device"], rec["credential"], now,
                                       "hub:tenancy-ended")
        return []

    def next_deadline(self, ctx):
        due = None
        for rec in book.live_hub_credentials(ctx.tx):
            r = self.site.residents.get(rec["resident"])
            end = 0 if r is None else self._ends(r)
            if end is not None and (due is None or end < due):
                due = end
        return due
