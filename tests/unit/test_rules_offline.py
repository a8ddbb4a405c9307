"""offline (supervision) over a real Store and Pipeline: a device silent for
heartbeat × grace raises one alarm; a device never heard is measured from the
first time the rule saw it, kept across restarts; hearing it again does not
resolve or duplicate the open alarm; settings per flat."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.unit.ruleskit import H, T0, Hub

GRACE = 2.5


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    h = Hub(tmp_path / "hub.db")
    yield h
    h.close()


def ev(h: Hub, now: float) -> list[dict]:
    """The offline alarms an evaluation at `now` raised."""
    return [a for a in h.evaluate(now) if a["type"] == "offline"]


def offline(h: Hub) -> list[tuple[str, str]]:
    return sorted((a["device"], a["state"]) for a in h.alarms("offline"))


def test_silent_device_fires_at_heartbeat_times_grace(hub: Hub) -> None:
    hub.evaluate(T0)  # the rule sees every configured device from here
    for dev in ("door-101", "door-102", "door-201", "lock-101", "lock-gate"):
        hub.heartbeat(dev, T0 + 10)
    assert ev(hub, T0 + 10 + GRACE * H - 1) == []
    raised = ev(hub, T0 + 10 + GRACE * H)
    # door-201 beats every 2 h: not yet
    assert sorted(a["device"] for a in raised) == ["door-101", "door-102", "lock-101", "lock-gate"]
    doc = next(a for a in raised if a["device"] == "door-101")
    assert doc["cause"] == "offline:door-101" and doc["flat"] == "b1-101"
    assert doc["detail"]["silent_for_s"] == GRACE * H
    gate = next(a for a in raised if a["device"] == "lock-gate")
    assert (gate["flat"], gate["entrance"]) == (None, "gate-north")
    assert [a["device"] for a in ev(hub, T0 + 10 + GRACE * 2 * H)] == ["door-201"]
    # each silence alarms once
    assert ev(hub, T0 + 30 * H) == []
    assert len(hub.alarms("offline")) == 5
    # nothing left to wait for (a past deadline would spin the rules loop)
    assert hub.deadline("offline", T0 + 30 * H) is None


def test_heartbeats_keep_it_quiet(hub: Hub) -> None:
    hub.evaluate(T0)
    for i in range(12):
        for dev in ("door-101", "door-102", "door-201", "lock-101", "lock-gate"):
            hub.heartbeat(dev, T0 + i * H)
        assert ev(hub, T0 + i * H + 1) == []
    assert hub.alarms("offline") == []


def test_never_heard_is_measured_from_first_seen_across_restarts(hub: Hub) -> None:
    hub.evaluate(T0)
    hub.restart()
    # later restarts must not move the start of the silence
    hub.evaluate(T0 + 2 * H)
    hub.restart()
    assert hub.deadline("offline", T0 + 2 * H) == T0 + GRACE * H
    raised = ev(hub, T0 + GRACE * H)
    assert "door-101" in {a["device"] for a in raised}
    assert raised[0]["detail"]["last_seen_at"] is None


def test_restart_in_the_middle_of_the_timer(hub: Hub) -> None:
    hub.evaluate(T0)
    hub.heartbeat("door-101", T0 + H)
    hub.restart()
    hub.evaluate(T0 + 2 * H)
    hub.restart()
    assert "door-101" not in {a["device"] for a in ev(hub, T0 + H + GRACE * H - 1)}
    hub.restart()
    assert "door-101" in {a["device"] for a in ev(hub, T0 + H + GRACE * H)}


def test_heard_again_keeps_the_alarm_open_and_no_second_one(hub: Hub) -> None:
    hub.evaluate(T0)
    hub.heartbeat("door-101", T0)
    hub.evaluate(T0 + GRACE * H)
    assert ("door-101", "raised") in offline(hub)
    hub.heartbeat("door-101", T0 + 4 * H)   # back
    assert ("door-101", "raised") in offline(hub)   # nobody resolved it
    # silent again while the first alarm is still open: no second alarm
    hub.evaluate(T0 + 4 * H + GRACE * H)
    assert [d for d, _ in offline(hub)].count("door-101") == 1
    # resolved, then heard and silent again: a new alarm
    first = next(a for a in hub.alarms("offline") if a["device"] == "door-101")
    hub.resolve(first, T0 + 8 * H)
    hub.heartbeat("door-101", T0 + 9 * H)
    raised = ev(hub, T0 + 9 * H + GRACE * H)
    assert "door-101" in {a["device"] for a in raised}


def test_per_flat_settings(tmp_path: Path) -> None:
    h = Hub(tmp_path / "hub.db", rules="rules: {offline: {grace: 4}}",
            flat_rules="{offline: {enabled: false}}")
    try:
        h.evaluate(T0)
        assert "door-101" not in {a["device"] for a in ev(h, T0 + 3 * H)}
        devices = {a["device"] for a in ev(h, T0 + 4 * H)}
        assert "door-101" in devices and "door-102" not in devices  # b1-102 switched off
    finally:
        h.close()
