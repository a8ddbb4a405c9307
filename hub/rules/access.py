"""Smart-lock access rules (lock frames in hub/verify/frames_lock.py).

unregistered_occupant: a lock reports `access` with outcome `unlocked` by a
credential that belongs to no resident registered for that flat on that day
(role any; `registered`, `from`/`until` dates in the site's time zone) → alarm,
in the same transaction as the event, naming the flat (or entrance) and the
credential. A lock at an entrance accepts any resident registered in the site.
A credential the hub provisioned on that lock for a resident (hub/locks/book.py,
confirmed by the lock) counts as that resident's. A mechanical key and the
inside handle carry no identity and are not judged, nor is a visitor code
(method `visitor`: made by the hub for an approved pass, docs/visitors.md); a face or remote unlock
carries the who-id the hub itself issued and is judged like a credential,
except the hub's own `op-<n>` of an operator's remote command it sent to that
lock (the command records who asked).

forced_entry: a lock reports `forced` (door opened without an unlock, bolt
forced) → high-severity alarm, one open per lock.

Never treats a denied attempt as an entry, and never logs a credential beyond
the id the lock reported.
"""
import datetime
import zoneinfo

from hub.alarms import documents as alarms
from hub.locks import book as lock_book
from hub.rules.engine import Trigger

# no identity to judge; a visitor code is a pass the hub made for this lock
# (its keyed check verified by the lock), inside the window it was approved for
NOT_JUDGED = ("mechanical_key", "inside", "visitor")


def local_day(at, tz_name):
    return datetime.datetime.fromtimestamp(at, zoneinfo.ZoneInfo(tz_name)).date()


def credential_holders(site, flat_id, credential, day, provisioned_for=None):
    """Residents registered on `day` (for `flat_id`, or the whole site if None)
    who hold `credential` (in the site file, or `provisioned_for`: the resident
    the hub provisioned it for on the lock)."""
    residents = site.flats[flat_id].residents if flat_id else site.residents.values()
    return [r for r in residents if (credential in r.credentials or r.id == provisioned_for)
            and r.registered_on(day)]


class UnregisteredOccupantRule:
    name = "unregistered_occupant"

    def __init__(self, site):
        self.site = site

    def on_event(self, ctx, event):
        v = event.reading.values
        if event.reading.type != "access" or v.get("outcome") != "unlocked":
            return []
        if v.get("method") in NOT_JUDGED:
            return []
        dev = event.device
        if not ctx.settings(self.name, dev.flat)["enabled"]:
            return []
        day = local_day(event.received_at, self.site.timezone)
        cred = v.get("credential")
        if v.get("method") == "remote" and lock_book.operator_command(ctx.tx, dev.id, cred):
            return []  # an operator's command: the hub recorded who asked for it
        if cred is not None:
            if v.get("method") == "face":
                # the hub's own face unlock names the resident the camera matched
                provisioned = cred
            else:
                provisioned = lock_book.holder(ctx.tx, dev.id, cred)
            if credential_holders(self.site, dev.flat, cred, day, provisioned):
                return []
        where = dev.flat or dev.entrance
        detail = {"credential": cred, "method": v.get("method"), "flat": dev.flat,
                  "entrance": dev.entrance, "local_date": day.isoformat(),
                  "counter": event.reading.counter}
        doc = alarms.device_alarm(self.site, "unregistered_occupant", "high", dev, detail,
                                  ctx.now)
        return [Trigger("unregistered_occupant:%s:%s" % (where, cred), doc)]

    def on_time(self, ctx, now):
        return []

    def next_deadline(self, ctx):
        return None


class ForcedEntryRule:
    name = "forced_entry"

    def __init__(self, site):
        self.site = site

    def on_event(self, ctx, event):
        if event.reading.type != "forced":
            return []
        dev = event.device
        if not ctx.settings(self.name, dev.flat)["enabled"]:
            return []
        detail = {"forced": event.reading.values.get("forced"), "counter": event.reading.counter}
        doc = alarms.device_alarm(self.site, "forced_entry", "high", dev, detail, ctx.now)
        return [Trigger("forced_entry:%s" % dev.id, doc)]

    def on_time(self, ctx, now):
        return []

    def next_deadline(self, ctx):
        return None
