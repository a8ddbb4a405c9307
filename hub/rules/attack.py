"""Possible attack: `rejections` (default 5) frames from one configured device
rejected within `within` (default 10 min) — bad tag, replayed, malformed; not
the QoS re-deliveries counted as `duplicate` — → alarm `possible_attack`, one
open per device.

Sees rejections through the engine's `on_rejection` hook, inside the
rejection's transaction. Keeps the recent rejection times per device in rule
state (at most `rejections` of them), so a restart keeps the count. Never keeps
state for device ids that are not configured (an attacker picks those freely).
While the device's alarm is open a rejection decides nothing and changes no
rule state (a flood on one device costs a counter per frame, no JSON): the
window starts again from the times kept when the alarm was raised.
"""
from hub.alarms import documents as alarms
from hub.rules.engine import Trigger

NAME = "attack"
IGNORED = ("duplicate", "unknown_device")


def recent(times, at, within_s, keep):
    """The rejection times still inside the window ending at `at`, newest `keep`."""
    kept = [t for t in times if at - t < within_s] + [at]
    return kept[-keep:] if keep else kept


class AttackRule:
    name = NAME

    def __init__(self, site):
        self.site = site

    def on_rejection(self, ctx, device_id, reason):
        dev = self.site.devices.get(device_id)
        if dev is None or reason in IGNORED:
            return []
        s = ctx.settings(NAME, dev.flat)
        if not s["enabled"]:
            return []
        cause = "attack:%s" % dev.id
        if ctx.tx.has_open_alarm(cause):
            return []  # one open per device: nothing to decide
        limit = max(1, int(s["rejections"]))
        state = ctx.tx.rule_get(NAME, dev.id) or {"times": [], "reasons": {}}
        times = recent(state["times"], ctx.now, s["within"], limit)
        reasons = dict(state.get("reasons", {}))
        reasons[reason] = reasons.get(reason, 0) + 1
        ctx.tx.rule_set(NAME, dev.id, {"times": times, "reasons": reasons})
        if len(times) < limit:
            return []
        detail = {"rejections": len(times), "within_s": int(s["within"]),
                  "first_at": alarms.iso(times[0]), "last_reason": reason,
                  "reasons_seen": reasons}
        doc = alarms.device_alarm(self.site, "possible_attack", "high", dev, detail, ctx.now)
        return [Trigger(cause, doc)]

    def on_event(self, ctx, event):
        return []

    def on_time(self, ctx, now):
        return []

    def next_deadline(self, ctx):
        return None
