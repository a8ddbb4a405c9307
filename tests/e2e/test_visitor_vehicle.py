"""A visitor's vehicle at the barrier and a one-entry QR at the gate, end to
end (scenarios/visitor_vehicle.yaml): the hub's visitor service on the
virtual clock, real brokers with the site's generated logins and ACL, and
the gate reader and the barrier as simulated MQTT peers (simulator/readers.py)
that verify the hub's answers themselves. Beyond the scenario's own
expectations: every answer a reader took was to its own report, in counter
order; the forged, replayed and stale reports left the hub's stored counter
and its entries as they were; the readers logged in as themselves and
nothing was denied; no full plate and no QR text is in the timeline or the
access log; and a wrong expectation fails the run."""
import asyncio
import json
import re
from pathlib import Path

from hub.store import Store
from hub.visitors.readers import COUNTER_RULE
from simulator.runner import run_scenario

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "visitor_vehicle.yaml"
PLATES = ("粤BD12345", "粤B12345", "粤B99999")


async def test_plates_and_qr_at_simulated_readers(tmp_path):
    lines = []
    ok, run = await run_scenario(SCENARIO, out=lines.append, workdir=tmp_path)
    assert ok, "\n".join(lines[-40:])
    barrier, gate = run.reader_peers["barrier-east"], run.reader_peers["gate-north-qr"]
    # each answer taken answers the report the reader sent, counters strictly increasing
    # one answer per genuine report, to that report; the stale one spent a counter,
    # the forged one none of the reader's
    for peer, reports, counters in ((barrier, 6, 7), (gate, 2, 2)):
        refs = [doc["ref"] for _, doc in peer.answers]
        sent = [doc["counter"] for _, doc in peer.answers]
        assert sent == sorted(set(sent))
        assert refs == sorted(set(refs)) and set(refs) == set(peer.directions)
        assert len(refs) == reports and peer.counter == counters and peer.pending is None
    assert run.reader_rejected == {"barrier-east": {"replayed": 2, "forged": 1, "stale": 1}}
    assert barrier.ignored == {} and gate.ignored == {"forged": 1, "replayed": 1}
    # the barrier opened on exactly the guest's plate inside the window, in then out
    opened = [(t - run.t0, doc["reason"], barrier.directions[doc["ref"]])
              for t, doc in barrier.answers if doc["open"]]
    assert opened == [(61 * 60, "ok", "in"), (110 * 60, "ok", "out")]
    store = await asyncio.to_thread(Store, tmp_path / "hub.db")
    try:
        # the hub's counter is the last genuine report's: no bad one moved it
        assert store.rule_get(COUNTER_RULE, "ctr:barrier-east", 0) == barrier.counter
        assert store.rule_get(COUNTER_RULE, "ctr:gate-north-qr", 0) == gate.counter
        entries = [tuple(r) for r in store.query(
            "SELECT reader, credential, direction FROM visit_entries ORDER BY at")]
        assert entries == [("barrier-east", "plate", "in"), ("gate-north-qr", "qr", "in"),
                           ("barrier-east", "plate", "out")]
        log = json.dumps(store.access_log(limit=1000), ensure_ascii=False)
    finally:
        store.close()
    assert "visitor_plate_unknown" in log
    assert not any(p in log for p in PLATES), "a plate in the access log"
    timeline = "\n".join(lines)
    assert not any(p in timeline for p in PLATES), "a full plate in the timeline"
    assert "粤B****45" in timeline and "粤B***99" in timeline
    assert run.visit_qrs and not any(q in timeline for q in run.visit_qrs.values())
    broker_log = (tmp_path / "broker-site" / "mosquitto.log").read_text()
    logins = set(re.findall(r"New client connected from \S+ as (\S+) \(p\d, c\d, k\d+, "
                            r"u'([^']*)'\)", broker_log))
    assert {("anju-sim-reader-barrier-east", "barrier-east"),
            ("anju-sim-reader-gate-north-qr", "gate-north-qr")} <= logins
    assert "Denied" not in broker_log


async def test_a_wrong_gate_expectation_fails_the_run(tmp_path):
    """The plate refused a minute before the window: claiming it opened fails."""
    text = SCENARIO.read_text(encoding="utf-8")
    bad = text.replace("{gate: barrier-east, reason: not_yet, count: 1}",
                       "{gate: barrier-east, open: true, count: 3}")
    assert bad != text
    path = tmp_path / "wrong.yaml"
    path.write_text(bad, encoding="utf-8")
    lines = []
    ok, run = await run_scenario(path, out=lines.append, workdir=tmp_path / "run")
    assert not ok
    assert run.failures == ["gate barrier-east open=true: 2 answer(s) taken "
                                         "(want 3)"]
