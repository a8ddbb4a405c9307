"""tamper over a real Store and Pipeline: a TAMPER frame or a heartbeat with the
case flag raises one alarm per device while open; case-closed reports do not;
resolution re-arms it; a restart keeps the open alarm; per-flat settings."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from anju import frame
from hub.verify import frames
from tests.unit.ruleskit import H, T0, Hub


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    h = Hub(tmp_path / "hub.db")
    yield h
    h.close()


def tamper(h: Hub, dev: str, case_open: bool, at: float) -> str:
    return h.send(dev, frame.T_TAMPER, b"\x01" if case_open else b"\x00", at)


def test_tamper_frame_fires(hub: Hub) -> None:
    assert tamper(hub, "door-101", True, T0) == "accepted"
    docs = hub.alarms("tamper")
    assert [(a["cause"], a["severity"], a["device"]) for a in docs] == [
        ("tamper:door-101", "high", "door-101")]


@pytest.mark.parametrize(("report", "fires"), [
    (lambda h: tamper(h, "door-101", False, T0), False),
    (lambda h: h.heartbeat("door-101", T0, flags=frame.HB_TAMPER), True),
    (lambda h: h.heartbeat("door-101", T0, flags=frame.HB_OPEN), False),
], ids=["case_closed", "heartbeat_flag", "heartbeat_door_open"])
def test_reports(hub: Hub, report, fires: bool) -> None:
    report(hub)
    assert len(hub.alarms("tamper")) == (1 if fires else 0)


def test_ble_case_open_fires(hub: Hub) -> None:
    reading = frames.Reading("door-102", 3, "state", {"case_open": True, "open": False}, 0, "ble")
    assert hub.pipeline.apply(reading, T0) == "accepted"
    assert [a["device"] for a in hub.alarms("tamper")] == ["door-102"]


def test_one_open_alarm_across_restart_then_reraise_after_resolution(hub: Hub) -> None:
    tamper(hub, "door-101", True, T0)
    hub.restart()
    hub.heartbeat("door-101", T0 + H, flags=frame.HB_TAMPER)
    tamper(hub, "door-101", True, T0 + H + 1)
    assert len(hub.alarms("tamper")) == 1
    hub.resolve(hub.alarms("tamper")[0], T0 + 2 * H)
    tamper(hub, "door-101", False, T0 + 3 * H)
    assert len(hub.alarms("tamper")) == 1
    tamper(hub, "door-101", True, T0 + 4 * H)
    assert len(hub.alarms("tamper")) == 2


def test_per_flat_settings(tmp_path: Path) -> None:
    h = Hub(tmp_path / "hub.db", flat_rules="{tamper: {enabled: false}}")
    try:
        tamper(h, "door-102", True, T0)
        tamper(h, "door-101", True, T0)
        assert [a["device"] for a in h.alarms("tamper")] == ["door-101"]
    finally:
        h.close()
