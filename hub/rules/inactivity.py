"""Inactivity: a flat where a resident lives alone and whose door sensor has
reported no open or close for the flat's threshold (default 12 h) raises one
alarm. Activity starts a new silence period; each period raises at most one.

The flat's last activity is projected by the pipeline into the store
(`flat_activity`); this rule only reads it and marks the period as alarmed.
"""
from hub import alarms
from hub.rules.engine import Trigger

MP_EPOCH_OFFSET = 946684800


def deadline(last_activity, threshold_s, open_alarm):
    """When this flat's silence becomes an alarm, or None (nothing to wait for)."""
    if last_activity is None or open_alarm is not None:
        return None
    return last_activity + threshold_s


def due(last_activity, threshold_s, open_alarm, now):
    d = deadline(last_activity, threshold_s, open_alarm)
    return d is not None and now >= d


def activity_time(device_time_mp, received_at, mp_epoch_offset=MP_EPOCH_OFFSET,
                  max_age_s=7 * 86400):
    """When the door actually moved: the device's time when it is plausible
    (a queued event delivered late), otherwise the time the hub received it."""
    if not device_time_mp:
        return received_at
    t = device_time_mp + mp_epoch_offset
    if received_at - max_age_s <= t <= received_at + 5:
        return min(t, received_at)
    return received_at


class InactivityRule:
    name = "inactivity"

    def __init__(self, site):
        self.site = site
        self.door_sensor_of = {}
        for d in site.devices.values():
            if d.kind == "door_sensor":
                self.door_sensor_of.setdefault(d.flat, d.id)

    def _watched(self, ctx):
        for flat_id, (last, event_id, open_alarm) in ctx.tx.all_flat_activity().items():
            flat = self.site.flats.get(flat_id)
            if flat is None or not flat.lives_alone:
                continue
            if not ctx.settings(self.name, flat_id)["enabled"]:
                continue
            yield flat, last, event_id, open_alarm

    def on_event(self, ctx, event):
        return self.on_time(ctx, ctx.now)

    def on_time(self, ctx, now):
        out = []
        for flat, last, event_id, open_alarm in list(self._watched(ctx)):
            if not due(last, flat.inactivity_s, open_alarm, now):
                continue
            last_event = ctx.tx.event(event_id) if event_id else None
            doc = alarms.inactivity(self.site, flat, flat.watched_resident(),
                                    self.door_sensor_of.get(flat.id), last_event, last, now)
            cause = "inactivity:%s:%d" % (flat.id, int(last))
            ctx.tx.set_flat_alarm(flat.id, cause)
            out.append(Trigger(cause, doc))
        return out

    def next_deadline(self, ctx):
        soonest = None
        for flat, last, _, open_alarm in self._watched(ctx):
            d = deadline(last, flat.inactivity_s, open_alarm)
            if d is not None and (soonest is None or d < soonest):
                soonest = d
        return soonest
