"""clock_skew over a real Store and Pipeline: a clock ahead fires at once; a
clock behind fires only when the device's frames stay behind for longer than
`max` (a queue flushed after a link outage does not); no clock (0) is never
judged; the run of behind frames survives a restart; per-flat settings."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.unit.ruleskit import H, M, T0, Hub, mp_time


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    h = Hub(tmp_path / "hub.db")
    yield h
    h.close()


def skewed(h: Hub) -> list[str]:
    return [a["device"] for a in h.alarms("clock_skew")]


@pytest.mark.parametrize(("offset", "fires"), [(0, False), (299, False), (-299, False),
                                               (301, True), (86400, True)])
def test_ahead_fires_at_once(hub: Hub, offset: float, fires: bool) -> None:
    hub.door("door-101", True, T0, device_time=mp_time(T0 + offset))
    assert skewed(hub) == (["door-101"] if fires else [])
    if fires:
        assert hub.alarms("clock_skew")[0]["detail"]["skew_s"] == offset


def test_no_clock_is_never_judged(hub: Hub) -> None:
    for i in range(5):
        hub.heartbeat("door-101", T0 + i * H)
    hub.door("door-101", True, T0 + 5 * H, device_time=0)
    assert skewed(hub) == []


def test_queue_flushed_after_an_outage_does_not_fire(hub: Hub) -> None:
    # three hours of frames queued on the device, delivered within seconds
    for i in range(6):
        hub.door("door-101", i % 2 == 0, T0 + 3 * H + i, device_time=mp_time(T0 + i * 30 * M))
    hub.door("door-101", False, T0 + 3 * H + 60, device_time=mp_time(T0 + 3 * H + 59))
    hub.door("door-101", True, T0 + 4 * H, device_time=mp_time(T0 + 4 * H))
    assert skewed(hub) == []


def test_persistently_behind_fires_across_a_restart(hub: Hub) -> None:
    behind = 2 * H
    hub.door("door-101", True, T0, device_time=mp_time(T0 - behind))
    assert skewed(hub) == []
    hub.restart()
    hub.door("door-101", False, T0 + 4 * M, device_time=mp_time(T0 + 4 * M - behind))
    assert skewed(hub) == []
    hub.restart()
    hub.door("door-101", True, T0 + 5 * M, device_time=mp_time(T0 + 5 * M - behind))
    assert skewed(hub) == ["door-101"]
    # one open alarm per device
    hub.door("door-101", False, T0 + H, device_time=mp_time(T0 + H + 3600))
    assert skewed(hub) == ["door-101"]


def test_a_good_frame_ends_the_behind_run(hub: Hub) -> None:
    hub.door("door-101", True, T0, device_time=mp_time(T0 - H))
    hub.door("door-101", False, T0 + 2 * M, device_time=mp_time(T0 + 2 * M))
    hub.door("door-101", True, T0 + 10 * M, device_time=mp_time(T0 + 10 * M - H))
    assert skewed(hub) == []


def test_per_flat_settings(tmp_path: Path) -> None:
    h = Hub(tmp_path / "hub.db", rules="rules: {clock_skew: {max: 1h}}",
            flat_rules="{clock_skew: {enabled: false}}")
    try:
        h.door("door-101", True, T0, device_time=mp_time(T0 + 30 * M))
        assert skewed(h) == []
        h.door("door-101", False, T0 + 1, device_time=mp_time(T0 + 2 * H))
        h.door("door-102", True, T0, device_time=mp_time(T0 + 5 * H))
        assert skewed(h) == ["door-101"]
    finally:
        h.close()
