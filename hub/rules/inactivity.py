"""Inactivity: a flat where a resident lives alone and whose door sensor has
reported no open or close for the flat's threshold (default 12 h) raises one
alarm. Activity starts a new silence period; each period raises at most one.
"""


def deadline(last_activity, threshold_s, open_alarm):
    """When this flat's silence becomes an alarm, or None (nothing to wait for)."""
    if last_activity is None or open_alarm is not None:
        return None
    return last_activity + threshold_s


def due(last_activity, threshold_s, open_alarm, now):
    d = deadline(last_activity, threshold_s, open_alarm)
    return d is not None and now >= d


def activity_time(device_time_mp, received_at, mp_epoch_offset=946684800, max_age_s=7 * 86400):
    """When the door actually moved: the device's time when it is plausible
    (a queued event delivered late), otherwise the time the hub received it."""
    if not device_time_mp:
        return received_at
    t = device_time_mp + mp_epoch_offset
    if received_at - max_age_s <= t <= received_at + 5:
        return min(t, received_at)
    return received_at
