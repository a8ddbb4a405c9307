"""hub.web.metrics.render: Prometheus text format from a snapshot (pure), and
hub.alarms.commands.parse on the payloads that must be refused (pure)."""
import pytest

from hub.alarms import commands
from hub.web import metrics


def snap(**over):
    base = {"accepted": 3, "rejected": {"bad_tag": 2}, "alarms": {("raised", "inactivity"): 1},
            "outbox": 4, "timers": {"inactivity": 12.5, "offline": None}, "escalations": 0,
            "links": {"mqtt": True, "upstream": False}, "commands": {"applied": 2},
            "ingest": {"store_errors": 1, "receiver_restarts": 0, "wal_pages": None}}
    base.update(over)
    return base


def test_every_metric_has_help_type_and_its_samples():
    text = metrics.render(snap())
    for name, (kind, _) in metrics.METRICS.items():
        assert "# TYPE %s %s\n" % (name, kind) in text
    lines = set(text.splitlines())
    assert {"anju_frames_accepted_total 3", 'anju_frames_rejected_total{reason="bad_tag"} 2',
            'anju_alarms{state="raised",type="inactivity"} 1', "anju_outbox_depth 4",
            'anju_rule_next_deadline_seconds{rule="inactivity"} 12.5',
            "anju_upstream_connected 0", "anju_device_broker_connected 1",
            'anju_commands_total{outcome="applied"} 2', "anju_ingest_store_errors_total 1",
            "anju_mqtt_receiver_restarts_total 0"} <= lines
    # no checkpoint yet (or a thread-mode hub): no made-up sample
    assert not any(line.startswith("anju_wal_pages ") for line in lines)
    # a rule waiting for nothing has no sample rather than a made-up number
    assert 'rule="offline"' not in text
    assert text.endswith("\n")


def test_label_values_are_escaped():
    text = metrics.render(snap(rejected={'we"ird\\reason\nx': 1}))
    assert 'anju_frames_rejected_total{reason="we\\"ird\\\\reason\\nx"} 1' in text.splitlines()


@pytest.mark.parametrize(("payload", "reason"), [
    (b"", "malformed"),
    (b"null", "malformed"),
    (b'"text"', "malformed"),
    (b"x" * (commands.MAX_COMMAND_BYTES + 1), "oversized"),
    (b'{"command_id": "c", "alarm_id": "a", "action": "resolve", "schema": 1}', "bad_schema"),
    (b'{"command_id": "", "alarm_id": "a", "action": "resolve"}', "bad_field"),
    (b'{"command_id": "c", "alarm_id": 7, "action": "resolve"}', "bad_field"),
    (b'{"command_id": "c", "alarm_id": "a", "action": "resolved"}', "unknown_action"),
    (b'{"command_id": "c", "alarm_id": "a", "action": "resolve", "actor": ["x"]}', "bad_field"),
    (b'{"command_id": "c", "alarm_id": "a", "action": "resolve", "at": 17}', "bad_field"),
    (('{"command_id": "%s", "alarm_id": "a", "action": "resolve"}' % ("c" * 129)).encode(),
     "bad_field"),
])
def test_parse_refuses_with_a_reason(payload, reason):
    with pytest.raises(commands.CommandInvalid) as err:
        commands.parse(payload)
    assert err.value.reason == reason


def test_parse_maps_actions_to_states_and_defaults_the_actor():
    cmd = commands.parse(b'{"command_id": "c", "alarm_id": "a", "action": "false_alarm"}')
    assert (cmd["state"], cmd["actor"], cmd["note"]) == ("false_alarm", "platform", None)
    assert [commands.ACTIONS[a] for a in ("dispatch", "acknowledge", "resolve", "cancel")] == [
        "dispatched", "acknowledged", "resolved", "cancelled"]
