"""verify → de-duplicate → append → project → rules → alarm + outbox.

Synchronous and deterministic: the service calls it from one asyncio task, so
events are applied one at a time in arrival order. Each accepted event and
everything it causes is one SQLite transaction. Rejections change nothing but
their counters.
"""
import logging

import time

from hub.alarms import documents as alarms
from hub.verify import frames
from hub.alarms.alarmbook import AlarmBook
from hub.rules import access, attack, battery, clock_skew, door_left_open, inactivity, offline
from hub.rules import tamper
from hub.rules import settings as rule_settings
from hub.rules.engine import Event, RuleEngine

log = logging.getLogger("anju.hub.pipeline")

# Rejections of ids the site does not know are counted in one row per reason:
# junk on random topics must cost O(1) storage, not a row per made-up id.
UNKNOWN_ID = "?"
# Ids and details longer than this are cut in log lines (a topic level can be
# tens of kilobytes).
LOG_ID_CHARS = 64
LOG_DETAIL_CHARS = 200
# "frame rejected" lines: a burst of this many per reason, then at most one
# per LOG_EVERY_S, with the number left out; a flood cannot fill the disk.
LOG_BURST = 20
LOG_EVERY_S = 10.0


def short(text, limit):
    """`text` cut to `limit` characters, saying how much was left out."""
    text = "" if text is None else str(text)
    if len(text) <= limit:
        return text
    return "%s...(+%d chars)" % (text[:limit], len(text) - limit)


class RejectionLog:
    """Rate-limited "frame rejected" warnings, per reason (monotonic time:
    this bounds the log, not what is counted)."""

    def __init__(self, burst=LOG_BURST, every_s=LOG_EVERY_S, now=time.monotonic):
        self.burst = burst
        self.every_s = every_s
        self.now = now
        self._state = {}  # reason -> [tokens, last refill, suppressed]

    def warn(self, device_id, reason, detail=""):
        t = self.now()
        st = self._state.get(reason)
        if st is None:
            st = self._state[reason] = [self.burst, t, 0]
        st[0] = min(self.burst, st[0] + (t - st[1]) / self.every_s)
        st[1] = t
        if st[0] < 1:
            st[2] += 1
            return False
        st[0] -= 1
        extra = {"device": short(device_id, LOG_ID_CHARS), "reason": reason}
        if detail:
            extra["detail"] = short(detail, LOG_DETAIL_CHARS)
        if st[2]:
            extra["not_logged_before"] = st[2]  # rejections of this reason left out
            st[2] = 0
        log.warning("frame rejected", extra=extra)
        return True


class Pipeline:
    def __init__(self, site, store, upstream_prefix="anju/upstream", rules=None, clock=None):
        self.site = site
        self.store = store
        self.alarm_topic = alarms.topic(upstream_prefix, site.site_id)
        self.book = AlarmBook(self.alarm_topic)
        self.engine = RuleEngine(site, rules if rules is not None else default_rules(site))
        self.clock_now = clock.now if clock is not None else time.time
        self.stats = {"accepted": 0, "rejected": 0, "duplicate": 0, "alarms": 0}
        self.escalated = 0
        self.rejection_log = RejectionLog()
        # fn(tx, device, visitor_code, at): a lock opened for a visitor code,
        # in the frame's transaction (the visitor service records the entry)
        self.on_visitor_entry = None

    # ---- ingest ----------------------------------------------------------------
    def device_for_topic(self, topic):
        parts = topic.split("/")
        if len(parts) != 4 or parts[0] != "anju" or parts[3] not in ("event", "state"):
            return None, None
        return parts[1], parts[2]

    def handle_mqtt(self, topic, payload, received_at, retained=False, redelivered=False):
        """Verify and apply one MQTT frame. Returns the outcome name.
        `redelivered`: the broker re-sends a frame it offered the hub before
        (MQTT DUP), as after a reconnect when a PUBACK was lost."""
        site_id, device_id = self.device_for_topic(topic)
        if site_id != self.site.site_id:
            return self._reject(device_id, "unknown_device", received_at, "site %s" % site_id)
        dev = self.site.devices.get(device_id)
        if dev is None or dev.frame_key is None:
            return self._reject(device_id, "unknown_device", received_at)
        result = frames.verify(device_id, dev.frame_key, bytes(payload))
        if isinstance(result, frames.Rejection):
            return self._reject(device_id, result.reason, received_at, result.detail)
        return self.apply(result, received_at, redelivered)

    def handle_ble(self, result, received_at):
        """Apply a hub.ble reading or rejection."""
        reason = getattr(result, "reason", None)
        if reason is not None:
            return self._reject(result.device_id or result.address, reason, received_at)
        v = result.values
        values = {}
        for src, dst, conv in (("opening", "open", bool), ("tamper", "case_open", bool),
                               ("battery", "percent", int), ("voltage_mv", "millivolts", int),
                               ("smoke", "smoke", bool)):
            if v.get(src) is not None:
                values[dst] = conv(v[src])
        reading = frames.Reading(result.device_id, result.counter, "state", values, 0, "ble")
        return self.apply(reading, received_at)

    def _reject(self, device_id, reason, at, detail=""):
        if device_id in self.site.devices:
            with self.store.transaction() as tx:
                tx.count_rejection(reason, device_id, at)
                self._raise(tx, self.engine.on_rejection(tx, device_id, reason, at), at)
        else:
            # no rule looks at ids the site does not know (an attacker picks those
            # freely): one counter in memory, written with the batch's commit
            self.store.count_rejection(reason, UNKNOWN_ID, at)
        key = "duplicate" if reason == "duplicate" else "rejected"
        self.stats[key] += 1
        if reason != "duplicate":
            self.rejection_log.warn(device_id, reason, detail)
        return reason

    def apply(self, reading, received_at, redelivered=False):
        with self.store.transaction() as tx:
            last = tx.last_counter(reading.device_id)
            if reading.counter <= last:
                # A frame the broker re-sends because its PUBACK was lost, after
                # later frames of the device were stored, is a duplicate too; the
                # same old frame published anew is a replay.
                same = reading.counter == last or (
                    redelivered and tx.has_event(reading.device_id, reading.counter))
                reason = "duplicate" if same else "replayed"
                tx.count_rejection(reason, reading.device_id, received_at)
                self._raise(tx, self.engine.on_rejection(tx, reading.device_id, reason,
                                                         received_at), received_at)
                self.stats["duplicate" if reason == "duplicate" else "rejected"] += 1
                if reason == "replayed":
                    self.rejection_log.warn(reading.device_id, reason)
                return reason
            prev = tx.device_state(reading.device_id)
            event_id = tx.append_event(reading, received_at)
            tx.update_device_state(reading.device_id, reading.values, received_at, event_id)
            self._project(tx, reading, received_at, event_id, prev)
            dev = self.site.devices[reading.device_id]
            code = reading.values.get("visitor_code") if reading.type == "access" else None
            if code and reading.values.get("outcome") == "unlocked" \
                    and self.on_visitor_entry is not None:
                self.on_visitor_entry(tx, dev, code, received_at)
            event = Event(dev, self.site.flats.get(dev.flat), reading, event_id, received_at, prev)
            self._raise(tx, self.engine.on_event(tx, event, received_at), received_at)
        self.stats["accepted"] += 1
        return "accepted"

    def _project(self, tx, reading, received_at, event_id, prev):
        dev = self.site.devices[reading.device_id]
        if dev.kind != "door_sensor":
            return
        last_activity, _, _ = tx.flat_activity(dev.flat)
        moved = reading.type == "door"
        if reading.transport == "ble":
            # BTHome carries state, not events: a change of the opening is activity
            was = prev["door_open"] if prev else None
            now_open = reading.values.get("open")
            moved = was is not None and now_open is not None and bool(was) != now_open
        if moved:
            at = inactivity.activity_time(reading.device_time, received_at)
            tx.set_flat_activity(dev.flat, max(at, last_activity or at), event_id)
        elif last_activity is None:
            # first word from the sensor: the silence is measured from here
            tx.set_flat_activity(dev.flat, received_at, event_id, clear_alarm=False)

    # ---- rules ------------------------------------------------------------------
    def next_deadline(self):
        """The earliest time a rule or an escalation needs to look again."""
        now = self.clock_now()
        soonest = self.engine.next_deadline(self.store, now)
        esc = self._escalation_after()
        if esc is not None:
            limit = rule_settings.resolve(self.site, "escalation")["max_level"]
            t = self.book.next_escalation(self.store, esc, limit)
            if t is not None and (soonest is None or t < soonest):
                soonest = t
        return soonest

    def evaluate(self, now):
        with self.store.transaction() as tx:
            raised = self._raise(tx, self.engine.on_time(tx, now), now)
            esc = self._escalation_after()
            if esc is not None:
                target = rule_settings.resolve(self.site, "escalation")["target"] or None
                limit = rule_settings.resolve(self.site, "escalation")["max_level"]
                for doc, level in self.book.due_escalations(tx, now, esc, limit):
                    self.book.escalate(tx, doc, level, now, target)
                    self.escalated += 1
            return raised

    def _escalation_after(self):
        s = rule_settings.resolve(self.site, "escalation")
        return s["after"] if s["enabled"] else None

    def _raise(self, tx, triggers, now):
        raised = []
        for t in triggers:
            doc = self.book.raise_alarm(tx, t.cause_key, t.doc, now)
            if doc is not None:
                raised.append(doc)
                self.stats["alarms"] += 1
        return raised

    def command(self, alarm_id, state, actor, now, note=None, command_id=None, assignee=None):
        """A lifecycle command from the platform, the property office or the CLI
        (`assignee`: whom a dispatch sends)."""
        with self.store.transaction() as tx:
            return self.book.transition(tx, alarm_id, state, actor, now, note, command_id,
                                        assignee=assignee)


def default_rules(site):
    """The rules a hub runs unless told otherwise."""
    from hub.rules import lock, smoke
    return [inactivity.InactivityRule(site), door_left_open.DoorLeftOpenRule(site),
            offline.OfflineRule(site), battery.LowBatteryRule(site), tamper.TamperRule(site),
            clock_skew.ClockSkewRule(site), attack.AttackRule(site),
            lock.LockRecordRule(site), access.UnregisteredOccupantRule(site),
            access.ForcedEntryRule(site), lock.DuressRule(site), lock.WrongCodeRule(site),
            lock.TenancyEndRule(site),
            lock.JammedRule(site), lock.DoorAjarRule(site), smoke.SmokeRule(site)]
