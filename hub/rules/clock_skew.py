"""Clock skew: a device whose clock is further than `max` (default 5 min) from
the hub's → alarm `clock_skew`, one open per device.

A frame's `device_time` (MicroPython epoch; 0 = the device has no clock) is
compared with the hub's receive time. Ahead is always wrong and alarms at once.
Behind is also what a frame queued during a link outage looks like, so behind
alarms only when the device's frames have stayed behind for longer than `max`
(the start of that run is kept in rule state). Never judges a frame without a
device time.
"""
from hub.alarms import documents as alarms
from hub.rules.engine import Trigger
from hub.rules.inactivity import MP_EPOCH_OFFSET

NAME = "clock_skew"


def judge(device_time_mp, received_at, max_s, behind_since):
    """(skew seconds or None, alarm?, new behind_since)."""
    if not device_time_mp:
        return None, False, behind_since
    skew = device_time_mp + MP_EPOCH_OFFSET - received_at
    if skew > max_s:
        return skew, True, None
    if skew < -max_s:
        if behind_since is None:
            return skew, False, received_at
        return skew, received_at - behind_since >= max_s, behind_since
    return skew, False, None


class ClockSkewRule:
    name = NAME

    def __init__(self, site):
        self.site = site

    def on_event(self, ctx, event):
        dev = event.device
        s = ctx.settings(NAME, dev.flat)
        if not s["enabled"] or not event.reading.device_time:
            return []
        behind_since = ctx.tx.rule_get(NAME, dev.id)
        skew, alarm, new_since = judge(event.reading.device_time, event.received_at, s["max"],
                                       behind_since)
        if new_since is None and behind_since is not None:
            ctx.tx.rule_delete(NAME, dev.id)
        elif new_since is not None and new_since != behind_since:
            ctx.tx.rule_set(NAME, dev.id, new_since)
        if not alarm:
            return []
        detail = {"skew_s": int(skew), "max_s": int(s["max"]),
                  "device_time": alarms.iso(event.reading.device_time + MP_EPOCH_OFFSET),
                  "received_at": alarms.iso(event.received_at)}
        doc = alarms.device_alarm(self.site, "clock_skew", "low", dev, detail, ctx.now)
        return [Trigger("clock_skew:%s" % dev.id, doc)]

    def on_time(self, ctx, now):
        return []

    def next_deadline(self, ctx):
        return None
