"""Door left open: a door sensor reports its door open and no close follows
within `after` (default 10 min) → one alarm per opening.

The opening is kept in rule state (`opened_at` per device), so the timer
survives a hub restart; closing ends the opening (the alarm, if any, stays for
a person to resolve). Never raises for a door whose open state it only guesses.
"""
from hub.alarms import documents as alarms
from hub.rules.engine import Trigger
from hub.rules.inactivity import activity_time

NAME = "door_left_open"


def opening_update(stored, values, moved_at):
    """The device's opening after a report: stored dict, None (closed) or unchanged."""
    if "open" not in values:
        return stored
    if not values["open"]:
        return None
    if stored is not None:
        return stored  # still the same opening
    return {"opened_at": moved_at, "alarmed": False}


class DoorLeftOpenRule:
    name = NAME

    def __init__(self, site):
        self.site = site
        self.devices = {d.id: d for d in site.devices.values() if d.kind == "door_sensor"}

    def _after(self, ctx, dev):
        s = ctx.settings(NAME, dev.flat)
        return s["after"] if s["enabled"] else None

    def on_event(self, ctx, event):
        dev = self.devices.get(event.device.id)
        if dev is None:
            return []
        stored = ctx.tx.rule_get(NAME, dev.id)
        at = event.received_at
        if event.reading.type == "door":
            at = activity_time(event.reading.device_time, event.received_at)
        new = opening_update(stored, event.reading.values, at)
        if new is None and stored is not None:
            ctx.tx.rule_delete(NAME, dev.id)
        elif new is not None and new is not stored:
            ctx.tx.rule_set(NAME, dev.id, new)
        return []

    def _pending(self, ctx):
        for dev_id, opening in ctx.tx.rule_items(NAME).items():
            dev = self.devices.get(dev_id)
            if dev is None or opening.get("alarmed"):
                continue
            after = self._after(ctx, dev)
            if after is not None:
                yield dev, opening, opening["opened_at"] + after

    def on_time(self, ctx, now):
        out = []
        for dev, opening, deadline in list(self._pending(ctx)):
            if now < deadline:
                continue
            opened_at = opening["opened_at"]
            ctx.tx.rule_set(NAME, dev.id, dict(opening, alarmed=True))
            doc = alarms.device_alarm(self.site, "door_left_open", "medium", dev,
                                      {"opened_at": alarms.iso(opened_at),
                                       "open_for_s": int(now - opened_at),
                                       "threshold_s": int(deadline - opened_at)}, now)
            out.append(Trigger("door_left_open:%s:%d" % (dev.id, int(opened_at)), doc))
        return out

    def next_deadline(self, ctx):
        return min((d for _, _, d in self._pending(ctx)), default=None)
