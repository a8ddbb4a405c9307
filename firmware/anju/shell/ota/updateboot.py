"""An update boot: fetch, verify and install a release with nothing of the app loaded.

For an app whose own tables leave no heap for the verifier beside them (the
smart lock, docs/ota.md "The smart lock"). The app hears an offer with the
light anju.shell.ota.report, and when it is idle it calls `request()` and
resets; its next boot sees the request before it imports anything of its
own and calls `run()`, which removes the request first (whatever happens
next, the boot after is the app's again), connects as `<device>.ota`
(another client id, so the app's kept session and the commands the broker
holds for it stay untouched), runs anju.shell.ota.fetch.Updater on the whole
release and resets: into the trial when it installed, back into the app
otherwise. The staged files stay, so an update boot that ended early
resumes where its flash copy ends.

It ends early, with the reason left for the app (`ended()`), when
`someone()` says a person is at the device or it passed `max_ms`: the app
is unavailable for at most that (and the manifest check, which cannot be
cut short). It must never touch the app's queue or its kept session.
"""
import gc
import time

from anju import counter
from anju.shell import hw, mqtt_link

REQUEST = "otaboot"
ENDED = "otaend"
# why an update boot ended without installing (the app backs off on SOMEONE)
DONE, SOMEONE, TIMEOUT, NETWORK = 0, 1, 2, 3


class _Ended(Exception):
    def __init__(self, why):
        Exception.__init__(self, why)
        self.why = why


def request(store, percent):
    """Ask for an update boot at the next reset (`percent`: the battery the
    app measured, the one the fetch is allowed on)."""
    store.write(REQUEST, bytes((max(0, min(100, percent)),)))


def requested(store):
    """The battery percent of a pending request, or None."""
    raw = store.read(REQUEST)
    return raw[0] if raw is not None and len(raw) == 1 else None


def ended(store):
    """Why the last update boot ended (DONE, SOMEONE, TIMEOUT, NETWORK), once; None if none ran."""
    raw = store.read(ENDED)
    if raw is None:
        return None
    store.remove(ENDED)
    return raw[0] if len(raw) == 1 else NETWORK


def run(cfg, board, store, percent, counter_file, someone, max_ms):
    """The update boot; resets the board at the end, never returns."""
    store.remove(REQUEST)  # first: whatever happens now, the next boot is the app's
    why = _fetch(cfg, board, store, percent, counter_file, someone, max_ms)
    store.write(ENDED, bytes((why,)))
    hw.reset()


def _fetch(cfg, board, store, percent, counter_file, someone, max_ms):
    from anju.shell.ota.fetch import Updater
    wdt = hw.watchdog(board)
    deadline = time.ticks_add(time.ticks_ms(), max_ms)

    def feed():
        gc.collect()  # between chunks: the heap has room, keep it in one piece
        wdt()
        if someone():
            raise _Ended(SOMEONE)
        if time.ticks_diff(deadline, time.ticks_ms()) <= 0:
            raise _Ended(TIMEOUT)

    frames = counter.FrameCounter(store, None, counter_file)
    updater = Updater(cfg, board["port"], frames.next, lambda: percent, hw.device_time, feed=feed)
    wlan = mqtt_link.wifi_up(cfg)
    if wlan is None:
        return NETWORK
    client = mqtt_link.make_client(cfg, cfg.device_id + ".ota")
    try:
        feed()
        client.connect()
        updater.exchange(client)
        client.disconnect()
    except _Ended as exc:
        client.close()
        return exc.why
    except OSError:
        client.close()
        return NETWORK
    finally:
        mqtt_link.wifi_down(wlan)
    return DONE
