"""Home Assistant state of a smoke sensor: smoke, and a problem for a low
battery, a fault or the end of its service life."""
import pytest

from hub.forward import discovery

STATUS = {"alarm": False, "warning": False, "muted": False, "testing": False, "fault": False,
          "end_of_service": False, "battery_low": False, "percent": 80}


@pytest.mark.parametrize("flag", ["battery_low", "fault", "end_of_service"])
def test_each_problem_flag_shows_as_problem(flag):
    state = discovery.apply_event(discovery.initial_state(None), "smoke_status", STATUS, 1.0)
    assert state["problem"] == "OFF" and state["smoke"] == "OFF"
    state = discovery.apply_event(state, "smoke_status", dict(STATUS, **{flag: True}), 2.0)
    assert state["problem"] == "ON"
    state = discovery.apply_event(state, "smoke_status", STATUS, 3.0)
    assert state["problem"] == "OFF"


def test_smoke_alarm_shows_as_smoke():
    state = discovery.apply_event(discovery.initial_state(None), "smoke",
                                  {"level": "alarm", "cause": "chamber"}, 1.0)
    assert state["smoke"] == "ON" and state["battery"] is None
