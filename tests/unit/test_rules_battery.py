"""low_battery over a real Store and Pipeline: the battery_low flag or a charge
below the setting raises one alarm per device while it is open; a healthy
report does not; after resolution a still-low battery raises again; settings
per flat; the open alarm survives a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from anju import frame
from tests.unit.ruleskit import H, T0, Hub


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    h = Hub(tmp_path / "hub.db")
    yield h
    h.close()


def battery(h: Hub, dev: str, pct: int, at: float) -> None:
    assert h.send(dev, frame.T_BATTERY, frame.battery_body(pct, 2500), at) == "accepted"


@pytest.mark.parametrize(("report", "fires"), [
    (lambda h: battery(h, "door-101", 19, T0), True),
    (lambda h: battery(h, "door-101", 20, T0), False),
    (lambda h: battery(h, "door-101", 95, T0), False),
    (lambda h: h.heartbeat("door-101", T0, flags=frame.HB_BATTERY_LOW, percent=60), True),
    (lambda h: h.heartbeat("door-101", T0, percent=5), True),
    (lambda h: h.heartbeat("door-101", T0, percent=90), False),
], ids=["pct19", "pct20", "pct95", "low_flag", "hb_pct5", "hb_ok"])
def test_fires_on_low_reports_only(hub: Hub, report, fires: bool) -> None:
    report(hub)
    docs = hub.alarms("low_battery")
    assert len(docs) == (1 if fires else 0)
    if fires:
        assert docs[0]["cause"] == "low_battery:door-101"
        assert docs[0]["severity"] == "low" and docs[0]["flat"] == "b1-101"


def test_one_open_alarm_per_device_and_reraise_after_resolution(hub: Hub) -> None:
    battery(hub, "door-101", 10, T0)
    hub.restart()
    battery(hub, "door-101", 9, T0 + H)
    hub.heartbeat("door-101", T0 + 2 * H, flags=frame.HB_BATTERY_LOW)
    assert len(hub.alarms("low_battery")) == 1
    hub.resolve(hub.alarms("low_battery")[0], T0 + 3 * H)
    battery(hub, "door-101", 8, T0 + 4 * H)
    assert len(hub.alarms("low_battery")) == 2


def test_per_flat_settings(tmp_path: Path) -> None:
    h = Hub(tmp_path / "hub.db", rules="rules: {low_battery: {below_percent: 30}}",
            flat_rules="{low_battery: {enabled: false}}")
    try:
        battery(h, "door-101", 25, T0)   # below the site's 30
        battery(h, "door-102", 1, T0)    # switched off in b1-102
        assert [a["device"] for a in h.alarms("low_battery")] == ["door-101"]
    finally:
        h.close()
