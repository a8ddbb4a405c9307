"""Inactivity: a flat where a resident lives alone and whose door sensor has
reported no open or close for the flat's threshold (default 12 h) raises one
alarm. Activity starts a new silence period; each period raises at most one.

Quiet hours (setting `quiet_hours: "22:00-06:00"`, in the site's time zone):
time inside them does not count towards the silence, so a resident asleep is
not reported; the threshold is reached only by waking-hours silence.

The flat's last activity is projected by the pipeline into the store
(`flat_activity`); this rule only reads it and marks the period as alarmed.
"""
import datetime
import zoneinfo

from hub.alarms import documents as alarms
from hub.config.values import parse_quiet_hours
from hub.rules.engine import Trigger

MP_EPOCH_OFFSET = 946684800


def quiet_intervals(t, quiet, tz):
    """Quiet intervals (start, end) in epoch seconds, in order, from the one
    around or after `t`: local wall-clock times, so DST shifts are followed."""
    (sh, sm), (eh, em) = quiet
    day = datetime.datetime.fromtimestamp(t, tz).date() - datetime.timedelta(days=1)
    while True:
        start = datetime.datetime(day.year, day.month, day.day, sh, sm, tzinfo=tz)
        end_day = day + datetime.timedelta(days=1) if (eh, em) <= (sh, sm) else day
        end = datetime.datetime(end_day.year, end_day.month, end_day.day, eh, em, tzinfo=tz)
        if end.timestamp() > t:
            yield start.timestamp(), end.timestamp()
        day += datetime.timedelta(days=1)


def silence_deadline(start, threshold_s, quiet=None, tz_name="UTC"):
    """When `threshold_s` seconds of silence outside quiet hours have passed since `start`."""
    if quiet is None:
        return start + threshold_s
    t, remaining = start, threshold_s
    for qs, qe in quiet_intervals(start, quiet, zoneinfo.ZoneInfo(tz_name)):
        if t < qs:
            if remaining <= qs - t:
                return t + remaining
            remaining -= qs - t
        t = max(t, qe)
    return None  # unreachable: the generator never ends


def deadline(last_activity, threshold_s, open_alarm, quiet=None, tz_name="UTC"):
    """When this flat's silence becomes an alarm, or None (nothing to wait for)."""
    if last_activity is None or open_alarm is not None:
        return None
    return silence_deadline(last_activity, threshold_s, quiet, tz_name)


def due(last_activity, threshold_s, open_alarm, now, quiet=None, tz_name="UTC"):
    d = deadline(last_activity, threshold_s, open_alarm, quiet, tz_name)
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

    def _watched(self, ctx, only=None):
        if only is not None:
            rows = {only: ctx.tx.flat_activity(only)}
        else:
            rows = ctx.tx.all_flat_activity()
        for flat_id, (last, event_id, open_alarm) in rows.items():
            flat = self.site.flats.get(flat_id)
            if flat is None or not flat.lives_alone:
                continue
            s = ctx.settings(self.name, flat_id)
            if not s["enabled"]:
                continue
            yield flat, last, event_id, open_alarm, parse_quiet_hours(s["quiet_hours"])

    def on_event(self, ctx, event):
        # only the event's flat can have changed; the rules loop wakes for the others
        if event.flat is None:
            return []
        return self._check(ctx, ctx.now, event.flat.id)

    def on_time(self, ctx, now):
        return self._check(ctx, now, None)

    def _check(self, ctx, now, only):
        out = []
        for flat, last, event_id, open_alarm, quiet in list(self._watched(ctx, only)):
            if not due(last, flat.inactivity_s, open_alarm, now, quiet, self.site.timezone):
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
        for flat, last, _, open_alarm, quiet in self._watched(ctx):
            d = deadline(last, flat.inactivity_s, open_alarm, quiet, self.site.timezone)
            if d is not None and (soonest is None or d < soonest):
                soonest = d
        return soonest
