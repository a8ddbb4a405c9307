"""Lifecycle commands from the platform over MQTT (hub/alarms/commands.py,
docs/alarms.md): a real HubService on two private brokers and a "platform"
MQTT 5 client on the upstream one.

What must hold: applied commands go upstream as the next versions of the alarm,
in order; duplicates and out-of-order commands change nothing and say so;
garbage gets `invalid`, never a crash and never a redelivery loop; a command
sent while the hub is down is applied when it comes back.
"""
import asyncio
import json

import pytest

from tests.integration.hubkit import (Platform, commands_component, door_frame, publish_frame,
                                      raise_alarm, site, start_hub, wait_for)

pytestmark = pytest.mark.broker


@pytest.fixture
async def rig(tmp_path, make_broker, make_site_broker):
    """(hub, platform) with the hub running; both closed at the end."""
    made = []

    async def start(site_cfg=None, upstream=None, site_broker=None):
        site_broker = site_broker or make_site_broker(site_cfg or site())
        upstream = upstream or make_broker("upstream")
        platform = Platform(upstream)
        hub = await start_hub(tmp_path / "hub.db", site_broker, upstream, site_cfg, http=False)
        made.append((hub, platform))
        return hub, platform

    yield start
    for hub, platform in made:
        platform.close()
        await hub.stop()


async def send(platform, alarm_id, action, command_id=None, **kw):
    return await asyncio.to_thread(platform.command, alarm_id, action, command_id, **kw)


async def test_dispatch_acknowledge_resolve_arrive_upstream_in_order(rig):
    # a real inactivity alarm: one door event, then 1 s of silence
    hub, platform = await rig(site(inactivity="1s"))
    await asyncio.to_thread(publish_frame, hub.site_broker, "door-101", door_frame(1))
    await wait_for(lambda: platform.on("alarms"), 8, "the inactivity alarm upstream")
    alarm_id = platform.on("alarms")[0]["id"]
    for action in ("dispatch", "acknowledge", "resolve"):
        cid = await send(platform, alarm_id, action, note="unit 3 on the way")
        await wait_for(lambda: platform.result(cid), what="result of " + action)
        assert platform.result(cid)["outcome"] == "applied"
    await wait_for(lambda: len(platform.alarm_versions(alarm_id)) == 4, what="four versions")
    assert platform.alarm_versions(alarm_id) == [(1, "raised"), (2, "dispatched"),
                                                 (3, "acknowledged"), (4, "resolved")]
    last = platform.on("alarms")[-1]
    assert last["history"][-1]["actor"] == "police-desk-7"
    assert last["history"][-1]["note"] == "unit 3 on the way"
    trail = hub.store.transitions(alarm_id)
    assert [(t["seq"], t["state"], t["actor"]) for t in trail] == [
        (1, "raised", "rules"), (2, "dispatched", "police-desk-7"),
        (3, "acknowledged", "police-desk-7"), (4, "resolved", "police-desk-7")]
    # the platform saw version 4 before the hub committed its delivery: wait for that
    await wait_for(lambda: hub.store.outbox_depth() == 0, what="the outbox drained")


@pytest.mark.parametrize(("script", "expected_outcomes", "final"), [
    # the same command id again: nothing changes, the platform hears "duplicate"
    ([("acknowledge", "c1"), ("acknowledge", "c1")], ["applied", "duplicate"], (2, "acknowledged")),
    # a late dispatch after the acknowledgement: out of order, ignored
    ([("acknowledge", "c1"), ("dispatch", "c2")], ["applied", "out_of_order"], (2, "acknowledged")),
    # anything after closing: closed
    ([("false_alarm", "c1"), ("resolve", "c2"), ("acknowledge", "c3")],
     ["applied", "closed", "closed"], (2, "false_alarm")),
    # a second acknowledgement under a new id: the state is already there
    ([("dispatch", "c1"), ("acknowledge", "c2"), ("acknowledge", "c3"), ("resolve", "c4"),
      ("resolve", "c4")], ["applied", "applied", "same_state", "applied", "duplicate"],
     (4, "resolved")),
    ([("cancel", "c1"), ("cancel", "c1")], ["applied", "duplicate"], (2, "cancelled")),
])
async def test_duplicates_and_out_of_order_commands_leave_a_consistent_state(
        rig, script, expected_outcomes, final):
    hub, platform = await rig()
    alarm = raise_alarm(hub, "tamper:door-101")
    prefix = alarm["id"][:8] + "-"
    for action, cid in script:
        await send(platform, alarm["id"], action, prefix + cid)
    await wait_for(lambda: len(platform.on("command_results")) == len(script), what="all results")
    outcomes = [r["outcome"] for r in platform.on("command_results")]
    assert outcomes == expected_outcomes
    # every result carries the alarm's state after the command
    assert platform.on("command_results")[-1]["state"] == final[1]
    seq, state = final
    await wait_for(lambda: len(platform.alarm_versions(alarm["id"])) == seq, what="versions")
    await asyncio.sleep(0.2)  # nothing more may arrive
    versions = platform.alarm_versions(alarm["id"])
    assert [s for s, _ in versions] == list(range(1, seq + 1))
    assert versions[-1] == (seq, state)
    stored = hub.store.alarm(alarm["id"])
    assert (stored["seq"], stored["state"]) == final
    assert [t["seq"] for t in hub.store.transitions(alarm["id"])] == list(range(1, seq + 1))


@pytest.mark.parametrize(("payload", "reason"), [
    (b"{not json", "malformed"),
    (b"\xff\xfe\x00", "malformed"),
    (b"[1, 2, 3]", "malformed"),
    (json.dumps({"schema": "anju.command/2", "command_id": "x1", "alarm_id": "a",
                 "action": "resolve"}).encode(), "bad_schema"),
    (json.dumps({"schema": "anju.command/1", "command_id": "x2", "alarm_id": "ALARM",
                 "action": "explode"}).encode(), "unknown_action"),
    (json.dumps({"schema": "anju.command/1", "alarm_id": "ALARM",
                 "action": "resolve"}).encode(), "bad_field"),
    (json.dumps({"schema": "anju.command/1", "command_id": "x3", "alarm_id": "ALARM",
                 "action": "resolve", "note": 17}).encode(), "bad_field"),
    (json.dumps({"schema": "anju.command/1", "command_id": "x4", "alarm_id": "ALARM",
                 "action": "resolve", "note": "n" * 17000}).encode(), "oversized"),
])
async def test_garbage_is_answered_invalid_acknowledged_and_changes_nothing(rig, payload, reason):
    hub, platform = await rig()
    alarm = raise_alarm(hub, "tamper:door-101")
    await wait_for(lambda: platform.alarm_versions(alarm["id"]), what="the alarm upstream")
    await asyncio.to_thread(platform.send, payload.replace(b"ALARM", alarm["id"].encode()))
    await wait_for(lambda: platform.on("command_results"), what="a result")
    (result,) = platform.on("command_results")
    assert result["schema"] == "anju.command_result/1"
    assert (result["outcome"], result["reason"]) == ("invalid", reason)
    assert hub.store.alarm(alarm["id"])["seq"] == 1
    assert commands_component(hub).processor.snapshot()["invalid"] == 1
    # acknowledged: a valid command behind it is served, and the poison is not offered again
    cid = await send(platform, alarm["id"], "acknowledge")
    await wait_for(lambda: platform.result(cid), what="the next command's result")
    assert platform.result(cid)["outcome"] == "applied"
    await asyncio.sleep(0.2)
    assert [r["outcome"] for r in platform.on("command_results")] == ["invalid", "applied"]


async def test_unknown_alarm_is_reported(rig):
    hub, platform = await rig()
    cid = await send(platform, "no-such-alarm", "resolve")
    await wait_for(lambda: platform.result(cid), what="a result")
    result = platform.result(cid)
    assert (result["outcome"], result["alarm_id"], result["state"]) == (
        "unknown_alarm", "no-such-alarm", None)
    assert hub.store.alarms() == []


async def test_command_sent_while_the_hub_is_down_is_applied_after_restart(
        tmp_path, make_broker, make_site_broker):
    site_broker, upstream = make_site_broker(site()), make_broker("upstream")
    platform = Platform(upstream)
    hub = await start_hub(tmp_path / "hub.db", site_broker, upstream, http=False)
    try:
        alarm = raise_alarm(hub, "tamper:door-101")
        await wait_for(lambda: platform.alarm_versions(alarm["id"]), what="the alarm upstream")
        # a poison message and a valid command, both handled (and acknowledged) before the stop
        await asyncio.to_thread(platform.send, b"{poison")
        first = await send(platform, alarm["id"], "dispatch")
        await wait_for(lambda: platform.result(first), what="the first result")
    finally:
        await hub.stop()
    # the hub is down: the broker holds the command for the hub's session
    cid = await send(platform, alarm["id"], "acknowledge", note="seen on camera")
    await asyncio.sleep(0.3)
    assert platform.result(cid) is None
    hub = await start_hub(tmp_path / "hub.db", site_broker, upstream, http=False)
    try:
        await wait_for(lambda: platform.result(cid), what="the queued command's result")
        assert platform.result(cid)["outcome"] == "applied"
        await wait_for(lambda: (3, "acknowledged") in platform.alarm_versions(alarm["id"]),
                       what="the acknowledged version")
        assert hub.store.transitions(alarm["id"])[-1]["note"] == "seen on camera"
        # what was acknowledged before the stop is not offered again
        await asyncio.sleep(0.3)
        assert [r["outcome"] for r in platform.on("command_results")] == [
            "invalid", "applied", "applied"]
    finally:
        platform.close()
        await hub.stop()


async def test_escalation_goes_to_the_second_target_too(rig):
    extra = "rules:\n  escalation: {after: 0.5s, max_level: 1}\n"
    hub, platform = await rig(site(extra=extra))
    alarm = raise_alarm(hub, "tamper:door-101")
    await wait_for(lambda: platform.on("escalations"), 8, "the escalation")
    (esc,) = platform.on("escalations")
    assert (esc["id"], esc["seq"], esc["severity"], esc["escalation"]["level"]) == (
        alarm["id"], 2, "high", 1)
    assert esc["escalation"]["target"] == "anju/upstream/sunrise/escalations"
    assert platform.alarm_versions(alarm["id"]) == [(1, "raised"), (2, "raised")]
    # acknowledging stops further escalation and goes out as seq 3
    cid = await send(platform, alarm["id"], "acknowledge")
    await wait_for(lambda: platform.result(cid), what="result")
    await wait_for(lambda: len(platform.alarm_versions(alarm["id"])) == 3, what="seq 3")
    assert len(platform.on("escalations")) == 1


async def test_a_command_the_store_failed_on_is_not_acknowledged_and_comes_back(
        tmp_path, make_broker, make_site_broker):
    site_broker, upstream = make_site_broker(site()), make_broker("upstream")
    platform = Platform(upstream)
    hub = await start_hub(tmp_path / "hub.db", site_broker, upstream, http=False)
    try:
        alarm = raise_alarm(hub, "tamper:door-101")
        # a real SQLite failure while this one command is committed (as a full disk would be)
        hub.store.db.execute("CREATE TRIGGER fail_cmd BEFORE INSERT ON commands WHEN "
                             "NEW.command_id = 'c-disk' BEGIN SELECT RAISE(ABORT, 'disk full'); END")
        await send(platform, alarm["id"], "acknowledge", "c-disk")
        await wait_for(lambda: commands_component(hub).store_errors == 1, what="the store failure")
        # nothing committed, no result, and the hub keeps serving other commands
        assert hub.store.alarm(alarm["id"])["seq"] == 1 and platform.result("c-disk") is None
        cid = await send(platform, "no-such-alarm", "resolve")
        await wait_for(lambda: platform.result(cid), what="the next command's result")
        hub.store.db.execute("DROP TRIGGER fail_cmd")
    finally:
        await hub.stop()
    # not acknowledged: the broker offers it again to the restarted hub
    hub = await start_hub(tmp_path / "hub.db", site_broker, upstream, http=False)
    try:
        await wait_for(lambda: platform.result("c-disk"), what="the re-offered command")
        assert platform.result("c-disk")["outcome"] == "applied"
        assert hub.store.alarm(alarm["id"])["state"] == "acknowledged"
    finally:
        platform.close()
        await hub.stop()
