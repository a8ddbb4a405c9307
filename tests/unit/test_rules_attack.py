"""attack over a real Store and Pipeline: N rejected frames (bad tag, replayed,
malformed) from one configured device within the window raise one
`possible_attack` alarm; duplicates, unknown devices and rejections spread
wider than the window do not; counts survive a restart; per-flat settings."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from anju import frame
from simulator import forge
from tests.unit.ruleskit import H, M, T0, Hub, key


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    h = Hub(tmp_path / "hub.db")
    yield h
    h.close()


def attacks(h: Hub) -> list[str]:
    return [a["device"] for a in h.alarms("possible_attack")]


def forged(h: Hub, dev: str, at: float) -> str:
    return h.raw(dev, forge.make_frame(bytes(32), dev, frame.T_DOOR, 0x7FFFFFF0, b"\x01"), at)


def replayed(h: Hub, dev: str, at: float) -> str:
    return h.send(dev, frame.T_DOOR, b"\x01", at, counter=1)


def truncated(h: Hub, dev: str, at: float) -> str:
    return h.raw(dev, forge.make_frame(key(dev), dev, frame.T_DOOR, 999, b"\x01")[:-3], at)


@pytest.mark.parametrize("reject", [forged, replayed, truncated])
def test_fires_on_the_fifth_rejection_within_the_window(hub: Hub, reject) -> None:
    hub.door("door-101", True, T0 - 10)
    hub.door("door-101", False, T0 - 5)
    for i in range(4):
        assert reject(hub, "door-101", T0 + i * M) != "accepted"
        assert attacks(hub) == []
    reject(hub, "door-101", T0 + 9 * M)
    assert attacks(hub) == ["door-101"]
    doc = hub.alarms("possible_attack")[0]
    assert (doc["cause"], doc["severity"], doc["detail"]["rejections"]) == (
        "attack:door-101", "high", 5)
    # more of the same while it is open: still one alarm
    for i in range(10):
        reject(hub, "door-101", T0 + 10 * M + i)
    assert attacks(hub) == ["door-101"]


def test_duplicates_and_unknown_devices_do_not_count(hub: Hub) -> None:
    hub.door("door-101", True, T0)
    for i in range(10):
        assert hub.send("door-101", frame.T_DOOR, b"\x01", T0 + i, counter=1) == "duplicate"
        assert forged(hub, "intruder-9", T0 + i) == "unknown_device"
    assert attacks(hub) == []
    assert hub.store.rule_items("attack") == {}


def test_rejections_spread_wider_than_the_window_do_not_fire(hub: Hub) -> None:
    for i in range(10):
        forged(hub, "door-101", T0 + i * 3 * M)  # 5 rejections span 12 min > 10 min
    assert attacks(hub) == []


def test_counts_survive_a_restart(hub: Hub) -> None:
    for i in range(3):
        forged(hub, "door-101", T0 + i)
    hub.restart()
    forged(hub, "door-101", T0 + 10)
    hub.restart()
    assert attacks(hub) == []
    forged(hub, "door-101", T0 + 20)
    assert attacks(hub) == ["door-101"]


def test_reraises_only_after_resolution(hub: Hub) -> None:
    for i in range(5):
        forged(hub, "door-101", T0 + i)
    hub.resolve(hub.alarms("possible_attack")[0], T0 + H)
    forged(hub, "door-101", T0 + 2 * H)
    assert attacks(hub) == ["door-101"]
    for i in range(4):
        forged(hub, "door-101", T0 + 2 * H + i + 1)
    assert attacks(hub) == ["door-101", "door-101"]


def test_per_flat_settings(tmp_path: Path) -> None:
    h = Hub(tmp_path / "hub.db", rules="rules: {attack: {rejections: 2, within: 1h}}",
            flat_rules="{attack: {enabled: false}}")
    try:
        for i in range(2):
            forged(h, "door-101", T0 + i * 20 * M)
            forged(h, "door-102", T0 + i * 20 * M)
        assert attacks(h) == ["door-101"]
    finally:
        h.close()
