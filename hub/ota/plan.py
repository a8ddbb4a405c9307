"""When the hub offers a release to a device: pure (docs/ota.md).

A window is "HH:MM-HH:MM" in the site's time zone; one that ends before it
starts runs over midnight ("23:00-02:00"). A device is offered its target
release only inside the window, only while the target is open (not done,
failed, refused or withdrawn), and never a release it reported as failed.

A target is *stalled* when the device is in the middle of an update (offered
it, fetching, installed, on trial) and the hub has not heard from it for
three of its heartbeats (at least STALL_MIN_S): a device that lost power or
its link mid-transfer. The state stays (the device resumes where its flash
copy ends when it comes back); the fleet status says so.
"""
import re

from hub.ota import OtaError

_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
OPEN = ("waiting", "offered", "fetching", "installed", "battery_low", "trial")
UNDER_WAY = ("offered", "fetching", "installed", "trial")
STALL_MIN_S = 3600
STALL_HEARTBEATS = 3


def parse_window(text):
    """(start minute, end minute) of the day; OtaError naming `window`."""
    m = _WINDOW.match(text or "") if isinstance(text, str) else None
    if m is None:
        raise OtaError("window must be HH:MM-HH:MM (e.g. 02:00-05:00), got %r" % (text,))
    start = int(m.group(1)) * 60 + int(m.group(2))
    end = int(m.group(3)) * 60 + int(m.group(4))
    if start == end:
        raise OtaError("window %s is empty: its start and end are the same" % text)
    return start, end


def in_window(window, local):
    """Whether the local datetime `local` is inside `window` (start, end)."""
    start, end = window
    minute = local.hour * 60 + local.minute
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end


def state_after_report(target_version, report):
    """The target's state after a device's report, or None to leave it."""
    if report["version"] == target_version and not report["trial"]:
        return "done"
    if any(f["version"] == target_version for f in report["failures"]):
        return "failed"
    status = report["status"]
    if status.startswith("refused"):
        return status
    if report["version"] == target_version:
        return "trial"  # running it, not confirmed yet
    if status in ("fetching", "installed", "battery_low"):
        return status
    return None


def should_offer(target, report, window_open):
    """Offer the target's release now?"""
    if target is None or not window_open or target["state"] not in OPEN:
        return False
    return report is None or report["version"] != target["version"]


def stalled_for(target, last_word_at, heartbeat_s, now):
    """Seconds the device has been silent in the middle of its update, when
    that is past its stall limit; else None. `last_word_at`: when the hub last
    heard from it on the OTA topics (None: never)."""
    if target is None or target["state"] not in UNDER_WAY:
        return None
    times = [t for t in (last_word_at, target["updated_at"]) if t is not None]
    if not times:
        return None
    silent = now - max(times)
    return silent if silent > max(STALL_HEARTBEATS * heartbeat_s, STALL_MIN_S) else None
