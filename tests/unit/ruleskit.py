"""A small site, a hub (real Store on a SQLite file + Pipeline) that can be
restarted on the same file, and real signed frames for the rule tests.

Time is hub epoch seconds passed in explicitly; nothing here sleeps.
"""

from __future__ import annotations

from pathlib import Path

from anju import frame
from hub.config import site as config
from hub.verify import frames_lock
from hub.config import yamlfile
from hub.pipeline import Pipeline
from hub.store import Store

T0 = 1_795_000_000.0  # 2026-11-18 11:06:40 UTC
H = 3600.0
M = 60.0
MP_EPOCH_OFFSET = 946684800
DEVICES = ("door-101", "door-102", "door-201", "lock-101", "lock-gate")


def key(device: str) -> bytes:
    return bytes((DEVICES.index(device) * 32 + i) % 256 for i in range(32))


def site_yaml(rules: str = "", flat_rules: str = "{}", timezone: str = "UTC",
              residents_101: str = "") -> str:
    residents_101 = residents_101 or """
          - {id: r-101, name: Wang Lan, lives_alone: true, credentials: [card-0001, pin-7]}"""
    return f"""\
site: {{id: sunrise, name: Sunrise Gardens, timezone: {timezone}}}
{rules}
buildings:
  - id: b1
    flats:
      - id: b1-101
        residents:{residents_101}
      - id: b1-102
        rules: {flat_rules}
        residents:
          - {{id: r-102, name: Li Wei, credentials: [card-0002]}}
  - id: b2
    flats:
      - id: b2-201
        residents:
          - {{id: r-201, name: Chen Bo, lives_alone: true}}
devices:
  - {{id: door-101, kind: door_sensor, board: esp32c3, flat: b1-101, transport: mqtt,
     heartbeat: 1h, frame_key: "{key('door-101').hex()}"}}
  - {{id: door-102, kind: door_sensor, board: esp32c3, flat: b1-102, transport: mqtt,
     heartbeat: 1h, frame_key: "{key('door-102').hex()}"}}
  - {{id: door-201, kind: door_sensor, board: esp32, flat: b2-201, transport: mqtt,
     heartbeat: 2h, frame_key: "{key('door-201').hex()}"}}
  - {{id: lock-101, kind: smart_lock, board: esp32c3, flat: b1-101, transport: mqtt,
     heartbeat: 1h, frame_key: "{key('lock-101').hex()}"}}
  - {{id: lock-gate, kind: smart_lock, board: esp32c3, entrance: gate-north, transport: mqtt,
     heartbeat: 1h, frame_key: "{key('lock-gate').hex()}"}}
"""


def site(**kw: str) -> config.SiteConfig:
    return config.parse_site(yamlfile.loads(site_yaml(**kw), "site.yaml"))


class Hub:
    """A pipeline over a store on one database file; `restart()` is a hub restart
    (a new Store and Pipeline on the same file; nothing carried in memory)."""

    def __init__(self, path: Path, **site_kw: str) -> None:
        self.path = path
        self.site_kw = site_kw
        self.store: Store | None = None
        self.counters: dict[str, int] = {}
        self.restart()

    def restart(self, **site_kw: str) -> None:
        if self.store is not None:
            self.store.close()
        if site_kw:
            self.site_kw = site_kw
        self.store = Store(self.path)
        self.pipeline = Pipeline(site(**self.site_kw), self.store)

    def close(self) -> None:
        self.store.close()

    def _counter(self, device: str) -> int:
        self.counters[device] = self.counters.get(device, 0) + 1
        return self.counters[device]

    def send(self, device: str, mtype: int, body: bytes, at: float, device_time: int = 0,
             counter: int | None = None) -> str:
        c = self._counter(device) if counter is None else counter
        data = frame.encode(key(device), device.encode(), mtype, c, device_time, body)
        return self.pipeline.handle_mqtt(f"anju/sunrise/{device}/event", data, at)

    def raw(self, device: str, data: bytes, at: float) -> str:
        return self.pipeline.handle_mqtt(f"anju/sunrise/{device}/event", data, at)

    def door(self, device: str, is_open: bool, at: float, device_time: int = 0) -> str:
        return self.send(device, frame.T_DOOR, frame.door_body(is_open), at, device_time)

    def heartbeat(self, device: str, at: float, flags: int = 0, percent: int = 90) -> str:
        return self.send(device, frame.T_HEARTBEAT, frame.heartbeat_body(flags, percent, 2900, 0),
                         at)

    def access(self, device: str, at: float, credential: str | None, method: str = "card",
               outcome: str = "unlocked", **kw: object) -> str:
        return self.send(device, frames_lock.T_ACCESS,
                         frames_lock.access_body(method, outcome, credential, **kw), at)

    def lock_frame(self, device: str, mtype: int, body: bytes, at: float,
                   device_time: int = 0) -> str:
        return self.send(device, mtype, body, at, device_time)

    def forced(self, device: str, at: float, cause: str = "opened_without_unlock") -> str:
        return self.send(device, frames_lock.T_FORCED, frames_lock.forced_body(cause), at)

    def evaluate(self, now: float) -> list[dict]:
        return self.pipeline.evaluate(now)

    def alarms(self, type: str | None = None) -> list[dict]:
        return [a for a in self.store.alarms() if type is None or a["type"] == type]

    def resolve(self, alarm: dict, now: float) -> None:
        outcome, _ = self.pipeline.command(alarm["id"], "resolved", "tester", now)
        assert outcome == "applied"

    def deadline(self, rule: str, now: float = T0) -> float | None:
        return self.pipeline.engine.timers(self.store, now)[rule]


def mp_time(epoch: float) -> int:
    """Hub epoch seconds -> a device_time in the MicroPython epoch."""
    return int(epoch - MP_EPOCH_OFFSET)
