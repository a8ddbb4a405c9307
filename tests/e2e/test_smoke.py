"""Smoke sensor end to end: the unmodified smoke_sensor firmware on simulated
boards with the physical chamber model (simulator/chamber.py), real Mosquitto
brokers, the hub in-process on the virtual clock, alarms read back from the
upstream broker. Latencies printed here are in virtual time (the simulator
does not model CPU time); bench/smoke_bench.py measures the wall-clock ones.
"""
import asyncio
import json

from hub.forward.interconnect import Interconnect
from hub.rules.smoke import smoke_state
from hub.store import Store
from simulator import loader
from simulator.runner import run_scenario

POLL_S = 0.5  # firmware default smoke.cmd_poll_ms
smoke = loader.core("anju.smoke")


def _run(name, tmp_path):
    lines = []
    ok, run = asyncio.run(run_scenario("scenarios/%s.yaml" % name, out=lines.append,
                                       workdir=tmp_path))
    assert ok, "\n".join(lines)
    return run


def _siren_on(run, did):
    return [t for t, duty in run.sim.siren_timeline(did) if duty]


def _upstream(run, kind="smoke"):
    return [(t, json.loads(p)) for t, _, p, _ in run.alarms.messages
            if json.loads(p)["type"] == kind]


def _store(tmp_path):
    return Store(tmp_path / "hub.db")


def _crossing_to_upstream(run, did):
    """(crossing, decision, upstream receipt) in virtual seconds."""
    ev = run.sim.chambers[did].events[0]
    crossing = ev.crossing(smoke.SmokeConfig().alarm)
    decision = _siren_on(run, did)[0]
    receipt = min(t for t, doc in _upstream(run) if doc["device"] == did and doc["seq"] == 1)
    return crossing, decision, receipt


def test_smouldering_alarm_siren_upstream_and_interconnect(tmp_path):
    run = _run("smoke_interconnect", tmp_path)
    on_a = _siren_on(run, "smoke-101a")
    on_b = _siren_on(run, "smoke-101b")
    assert on_a and on_b and not _siren_on(run, "smoke-102")
    # temporal-3 on the source: tones start 0, 1, 2 and 4 s after the first
    assert [round(t - on_a[0], 3) for t in on_a[:4]] == [0.0, 1.0, 2.0, 4.0]
    crossing, decision, receipt = _crossing_to_upstream(run, "smoke-101a")
    print("smouldering: crossing -> decision %.1f s, -> upstream %.1f s (virtual)"
          % (decision - crossing, receipt - crossing))
    assert decision <= receipt
    assert receipt - crossing <= smoke.SmokeConfig().confirm_s()
    (_, doc), = [(t, d) for t, d in _upstream(run) if d["seq"] == 1]
    assert (doc["severity"], doc["device"], doc["flat"]) == ("critical", "smoke-101a", "1-101")
    # interconnect: the other sensor of the flat sounds at its next command poll
    # (one poll when the broker delivered before it, two when it just missed one)
    print("interconnect: source siren -> follower siren %.2f s (virtual)" % (on_b[0] - on_a[0]))
    assert 0 <= on_b[0] - on_a[0] <= 2 * POLL_S + 1e-6
    ic = [c for c in run.hub.components if isinstance(c, Interconnect)][0]
    # sound when the source alarms, silence with its all-clear; hub counters increase
    assert [(d, s) for _, d, s, _ in ic.sent] == [("smoke-101b", 1), ("smoke-101b", 0)]
    assert ic.sent[0][3] < ic.sent[1][3]
    # not acknowledged for `escalation.after` (5 min): the fire alarm was escalated
    assert any(d.get("escalation") for _, d in _upstream(run))
    assert any(d["detail"].get("smoke") == "cleared" for _, d in _upstream(run))
    store = _store(tmp_path)
    try:
        follower = [(e["values"]["level"], e["values"]["cause"]) for e in store.events("smoke-101b")
                    if e["type"] == "smoke"]
        assert follower == [("alarm", "interconnect"), ("normal", "interconnect")]
        # all clear: nothing sounds, nothing alarms any more
        for did in ("smoke-101a", "smoke-101b", "smoke-102"):
            st = smoke_state(store, did)
            assert not st.get("alarm") and not st.get("interconnect"), (did, st)
    finally:
        store.close()


def test_flaming_alarm_within_confirmation_and_all_clear(tmp_path):
    run = _run("smoke_flaming", tmp_path)
    crossing, decision, receipt = _crossing_to_upstream(run, "smoke-501")
    print("flaming: crossing -> decision %.1f s, -> upstream %.1f s (virtual)"
          % (decision - crossing, receipt - crossing))
    assert receipt - crossing <= smoke.SmokeConfig().confirm_s()
    docs = sorted((d["seq"], d) for _, d in _upstream(run))
    assert [s for s, _ in docs] == [1, 2]
    assert docs[1][1]["detail"]["smoke"] == "cleared" and docs[0][1]["id"] == docs[1][1]["id"]


def test_link_down_siren_sounds_alarm_arrives_once_when_link_returns(tmp_path):
    run = _run("smoke_flaming_link_down", tmp_path)
    t0 = run.t0
    on = _siren_on(run, "smoke-201")
    assert on and on[0] - t0 < 150  # sounding while Wi-Fi is down (link back at 180 s)
    firsts = [(t, d) for t, d in _upstream(run) if d["seq"] == 1]
    assert len(firsts) == 1 and 180 <= firsts[0][0] - t0 <= 190
    store = _store(tmp_path)
    try:
        alarms = [e for e in store.events("smoke-201") if e["type"] == "smoke"
                  and e["values"]["level"] == "alarm"]
        assert len(alarms) == 1  # stored once, no duplicate from re-delivery
    finally:
        store.close()


def test_steam_and_dust_no_alarm_contamination_reported(tmp_path):
    run = _run("smoke_nuisance", tmp_path)
    assert not _upstream(run)
    store = _store(tmp_path)
    try:
        st = smoke_state(store, "smoke-301")
        assert st["contamination"] >= 20 and not st["alarm"]
    finally:
        store.close()


def test_hush_refusal_self_test_low_battery_end_of_service(tmp_path):
    run = _run("smoke_hush_test", tmp_path)
    store = _store(tmp_path)
    try:
        hushes = {did: [e["values"]["hush"] for e in store.events(did) if e["type"] == "hush"]
                  for did in ("smoke-401", "smoke-402")}
        assert hushes == {"smoke-401": ["muted", "ended"], "smoke-402": ["refused"]}
        st = smoke_state(store, "smoke-403")
        assert st["self_test"] == {"chamber_ok": True, "siren_ok": True, "radio_ok": True,
                                   "passed": True}
        assert st["battery_low"] and st["end_of_service"]
    finally:
        store.close()
    # trouble chirps: short tones, once a minute, after the battery went low at 5 m
    tl = run.sim.siren_timeline("smoke-403")
    chirps = [t - run.t0 for (t, d), (t2, _) in zip(tl, tl[1:]) if d and t2 - t < 0.1]
    assert len([c for c in chirps if c >= 300]) >= 15


def test_ble_only_sensor_alarm_and_all_clear_over_bthome(tmp_path):
    run = _run("smoke_ble", tmp_path)
    docs = sorted((d["seq"], d) for _, d in _upstream(run))
    assert [s for s, _ in docs] == [1, 2]
    assert docs[0][1]["device"] == "smoke-601" and docs[1][1]["detail"]["smoke"] == "cleared"
    crossing, decision, receipt = _crossing_to_upstream(run, "smoke-601")
    # the BTHome burst reaches the hub at the end of its advertising window (1 s)
    assert receipt - crossing <= smoke.SmokeConfig().confirm_s() + 1.0


def test_benchmark_harness_measures_episodes():
    from bench import smoke_bench
    m = asyncio.run(smoke_bench.measure(episodes=3))
    assert len(m["decision_to_upstream_ms"]) == 3
    assert all(0 < v < 5000 for v in m["decision_to_upstream_ms"])
    assert all(0 <= v <= m["bound_s"] for v in m["crossing_to_decision_s"])
