"""door_left_open over a real Store and Pipeline: fires `after` an opening with
no close, not when the door closes in time, once per opening, across a hub
restart in the middle of the timer, and with per-flat settings."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from anju import frame
from tests.unit.ruleskit import M, T0, Hub, mp_time

AFTER = 10 * M


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    h = Hub(tmp_path / "hub.db")
    yield h
    h.close()


def test_fires_after_the_threshold_and_not_before(hub: Hub) -> None:
    assert hub.door("door-101", True, T0) == "accepted"
    assert hub.deadline("door_left_open") == T0 + AFTER
    assert hub.evaluate(T0 + AFTER - 1) == []
    raised = hub.evaluate(T0 + AFTER)
    assert [a["type"] for a in raised] == ["door_left_open"]
    doc = raised[0]
    assert (doc["flat"], doc["device"], doc["building"]) == ("b1-101", "door-101", "b1")
    assert doc["cause"] == "door_left_open:door-101:%d" % T0
    assert doc["detail"]["open_for_s"] == AFTER
    # the opening alarmed: no deadline left, no second alarm
    assert hub.deadline("door_left_open") is None
    assert hub.evaluate(T0 + 5 * AFTER) == []
    assert len(hub.alarms("door_left_open")) == 1


def test_closing_in_time_cancels_the_timer(hub: Hub) -> None:
    hub.door("door-101", True, T0)
    hub.door("door-101", False, T0 + AFTER - 1)
    assert hub.deadline("door_left_open") is None
    assert hub.evaluate(T0 + 3 * AFTER) == []
    assert hub.alarms("door_left_open") == []


def test_a_heartbeat_saying_open_does_not_restart_the_opening(hub: Hub) -> None:
    hub.door("door-101", True, T0)
    hub.heartbeat("door-101", T0 + 5 * M, flags=frame.HB_OPEN)
    assert hub.deadline("door_left_open") == T0 + AFTER
    # a heartbeat that says closed ends it
    hub.heartbeat("door-101", T0 + 6 * M, flags=0)
    assert hub.deadline("door_left_open") is None


def test_each_opening_raises_its_own_alarm(hub: Hub) -> None:
    hub.door("door-101", True, T0)
    assert len(hub.evaluate(T0 + AFTER)) == 1
    hub.door("door-101", False, T0 + AFTER + 5)
    hub.door("door-101", True, T0 + 2 * AFTER)
    second = hub.evaluate(T0 + 3 * AFTER)
    assert [a["cause"] for a in second] == ["door_left_open:door-101:%d" % (T0 + 2 * AFTER)]
    assert len(hub.alarms("door_left_open")) == 2


def test_restart_in_the_middle_of_the_timer(hub: Hub) -> None:
    hub.door("door-101", True, T0)
    hub.restart()
    assert hub.deadline("door_left_open") == T0 + AFTER
    assert hub.evaluate(T0 + AFTER - 1) == []
    hub.restart()
    assert len(hub.evaluate(T0 + AFTER)) == 1
    hub.restart()
    assert hub.evaluate(T0 + 2 * AFTER) == []
    assert len(hub.alarms("door_left_open")) == 1


def test_restart_then_close_does_not_fire(hub: Hub) -> None:
    hub.door("door-101", True, T0)
    hub.restart()
    hub.door("door-101", False, T0 + 2 * M)
    assert hub.evaluate(T0 + 2 * AFTER) == []


def test_late_delivered_open_is_timed_from_the_device_time(hub: Hub) -> None:
    # queued on the device during a link outage, delivered 8 minutes late
    hub.door("door-101", True, T0 + 8 * M, device_time=mp_time(T0))
    assert hub.deadline("door_left_open") == T0 + AFTER


def test_per_flat_settings(tmp_path: Path) -> None:
    h = Hub(tmp_path / "hub.db", rules="rules: {door_left_open: {after: 30m}}",
            flat_rules="{door_left_open: {enabled: false}}")
    try:
        h.door("door-101", True, T0)
        h.door("door-102", True, T0)
        assert h.evaluate(T0 + AFTER) == []
        assert h.deadline("door_left_open") == T0 + 30 * M
        raised = h.evaluate(T0 + 30 * M)
        assert [a["device"] for a in raised] == ["door-101"]  # b1-102 has it switched off
    finally:
        h.close()
