"""Smoke: a sensor's own alarm (chamber cause) raises a critical `smoke`
alarm at once (outbox priority 100, ahead of anything queued); the sensor's
all-clear publishes the next version of that alarm with the smoke cleared;
the other smoke sensors in the configured scope (flat, building, site, off)
are told to sound (interconnect) and later to stop.

Interconnect commands are written to the rule's store state in the same
transaction as the alarm (`cmd:<device>`), and hub/forward/interconnect.py publishes
them; so a crash between the two loses nothing. The device's smoke state
(alarm, warning, muted, testing, fault, end of service, low battery,
interconnect, contamination) is kept under `state:<device>`.

It never raises an alarm for a sensor that sounds only because of
interconnect, and never publishes anything itself.
"""
import copy

from hub import ConfigError
from hub.alarms import documents as alarms
from hub.rules import settings as rule_settings
from hub.verify import frames_smoke  # noqa: F401  registers the smoke message types
from hub.rules.engine import Trigger

NAME = "smoke"
SCOPES = ("flat", "building", "site", "off")
STATE_KEYS = ("alarm", "warning", "muted", "testing", "fault", "end_of_service", "battery_low",
              "interconnect", "contamination", "percent", "sensitivity")


def smoke_state(store, device_id):
    """What the hub knows of a smoke sensor (for the HTTP API, discovery, tests)."""
    return store.rule_get(NAME, "state:" + device_id, {})


def in_scope(site, source, scope):
    """The other smoke sensors that sound when `source` alarms."""
    if scope == "off":
        return []
    src_flat = site.flats.get(source.flat)
    out = []
    for d in site.devices.values():
        if d.kind != "smoke_sensor" or d.id == source.id:
            continue
        flat = site.flats.get(d.flat)
        if scope == "flat" and d.flat != source.flat:
            continue
        if scope == "building" and (flat is None or src_flat is None
                                    or flat.building != src_flat.building):
            continue
        out.append(d.id)
    return sorted(out)


class _BleSmoke:
    """A BTHome state reading seen as a smoke frame (no reading or threshold on the air)."""

    def __init__(self, reading):
        self.type = "smoke"
        self.counter = reading.counter
        self.device_time = reading.device_time
        self.values = {"level": "alarm" if reading.values["smoke"] else "normal",
                       "cause": "chamber", "smoke": None, "threshold": None}


class SmokeRule:
    name = NAME

    def __init__(self, site, alarm_topic=None):
        self.site = site
        self.alarm_topic = alarm_topic or alarms.topic("anju/upstream", site.site_id)
        self.wake = None  # set by hub/forward/interconnect.py: called when commands are queued
        for flat_id in [None] + sorted(site.flats):
            scope = rule_settings.resolve(site, NAME, flat_id)["interconnect"]
            if scope not in SCOPES:
                raise ConfigError("rules: smoke.interconnect is '%s'%s; allowed: %s"
                                  % (scope, " (flat %s)" % flat_id if flat_id else "",
                                     ", ".join(SCOPES)))

    def on_event(self, ctx, event):
        dev = event.device
        if dev.kind != "smoke_sensor":
            return []
        r = event.reading
        if r.type == "state" and "smoke" in r.values:
            # BTHome carries state: the smoke binary stands for a chamber alarm
            r = _BleSmoke(r)
        self._project(ctx, dev, r)
        if r.type != "smoke" or r.values["cause"] != "chamber":
            return []
        settings = ctx.settings(NAME, dev.flat)
        if not settings["enabled"]:
            return []
        open_key = "open:" + dev.id
        if r.values["level"] == "alarm":
            if ctx.tx.rule_get(NAME, open_key) is not None:
                return []  # already alarming (a repeat after a reboot)
            cause = "smoke:%s:%d" % (dev.id, r.counter)
            ctx.tx.rule_set(NAME, open_key, cause)
            self._interconnect(ctx, dev, settings["interconnect"], 1)
            return [Trigger(cause, self._doc(dev, r, ctx.now))]
        cause = ctx.tx.rule_get(NAME, open_key)
        if cause is None:
            return []
        ctx.tx.rule_delete(NAME, open_key)
        self._interconnect(ctx, dev, settings["interconnect"], 0)
        doc = ctx.tx.open_alarm_for_cause(cause)
        if doc is not None:
            new = copy.deepcopy(doc)
            new["seq"] = doc["seq"] + 1
            new["detail"]["smoke"] = "cleared"
            new["detail"]["cleared_at"] = alarms.iso(ctx.now)
            new["updated_at"] = alarms.iso(ctx.now)
            new.setdefault("history", []).append(
                {"seq": new["seq"], "state": doc["state"], "at": new["updated_at"],
                 "actor": "device", "note": "smoke cleared (all-clear)"})
            ctx.tx.update_alarm(new, ctx.now, "device", "smoke cleared", self.alarm_topic)
        return []

    def _doc(self, dev, r, now):
        flat = self.site.flats.get(dev.flat)
        doc = alarms.generic(self.site, "smoke", "critical",
                             {"building": flat.building if flat else None, "flat": dev.flat,
                              "device": dev.id},
                             {"smoke": "present", "level": r.values["level"],
                              "reading": r.values["smoke"], "threshold": r.values["threshold"],
                              "counter": r.counter, "device_time": r.device_time}, now)
        if flat is not None:
            res = flat.watched_resident()
            doc["resident"] = res.public() if res else None
        return doc

    def _interconnect(self, ctx, source, scope, sound):
        targets = in_scope(self.site, source, scope)
        for did in targets:
            ctx.tx.rule_set(NAME, "cmd:" + did, {"sound": sound, "source": source.id,
                                                 "queued_at": ctx.now})
        if targets and self.wake is not None:
            self.wake()

    def _project(self, ctx, dev, r):
        key = "state:" + dev.id
        st = ctx.tx.rule_get(NAME, key, {})
        v = r.values
        if r.type == "smoke_status":
            for k in STATE_KEYS:
                if k in v:
                    st[k] = v[k]
        elif r.type == "smoke":
            st["alarm"] = v["level"] == "alarm" and v["cause"] == "chamber"
            st["warning"] = v["level"] == "warning"
            st["interconnect"] = v["cause"] == "interconnect" and v["level"] == "alarm"
            if v["level"] != "alarm":
                st["muted"] = False
        elif r.type == "hush":
            st["muted"] = v["hush"] == "muted"
        elif r.type == "self_test":
            st["testing"] = False
            st["self_test"] = v
        elif r.type == "fault":
            if v["fault"] == "end_of_service":
                st["end_of_service"] = v["active"]
            else:
                st["fault"] = v["active"]
                st["fault_kind"] = v["fault"] if v["active"] else None
        elif r.type == "battery":
            st["battery_low"] = v["percent"] <= 33
            st["percent"] = v["percent"]
        else:
            return
        st["updated_at"] = ctx.now
        ctx.tx.rule_set(NAME, key, st)

    def on_time(self, ctx, now):
        return []

    def next_deadline(self, ctx):
        return None
