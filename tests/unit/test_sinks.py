"""LoopBridge and the hub's face sinks against a real loop thread and a real store."""
import asyncio
import threading
import time

import pytest

from hub import ConfigError, StoreError
from hub.web.http import parse_config
from hub.face.sinks import HubAlarmSink, HubEventSink, LoopBridge
from hub.store import Store


class Site:
    site_id, site_name = "garden-court", "Garden Court"


class Clock:
    def now(self):
        return 1_790_000_000.0


@pytest.fixture
def loop_thread():
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def test_calls_run_on_the_loop_thread_and_errors_come_back(loop_thread):
    bridge = LoopBridge(loop_thread, timeout_s=2)
    names = []
    assert bridge.call(lambda: names.append(threading.current_thread().name) or 7) == 7
    assert names != [threading.current_thread().name]
    with pytest.raises(ZeroDivisionError):
        bridge.call(lambda: 1 / 0)


def test_a_blocked_loop_is_a_store_error_and_the_late_call_is_dropped(loop_thread):
    bridge = LoopBridge(loop_thread, timeout_s=0.2)
    loop_thread.call_soon_threadsafe(time.sleep, 0.6)   # the loop is busy
    ran = []
    with pytest.raises(StoreError, match="did not answer within 0.2 s"):
        bridge.call(ran.append, 1)
    time.sleep(0.6)
    assert bridge.call(len, ran) == 0   # the abandoned call never ran


def test_a_closed_bridge_refuses(loop_thread):
    bridge = LoopBridge(loop_thread)
    bridge.close()
    with pytest.raises(StoreError, match="stopping"):
        bridge.call(len, [])


def test_sinks_write_alarm_outbox_and_access_log(loop_thread, tmp_path):
    store = Store(tmp_path / "hub.db")
    bridge, woken = LoopBridge(loop_thread), []
    alarms = HubAlarmSink(Site(), store, Clock(), "anju/upstream/garden-court/alarms", bridge,
                          lambda: woken.append(threading.current_thread().name))
    events = HubEventSink(store, Clock(), bridge)
    try:
        alarm_id = alarms.raise_alarm("watchlist_face", "high",
                                      {"site": "garden-court", "building": "b1", "entrance": "b1-main"},
                                      {"snapshot": "d/x.jpg", "score": 0.5, "extra": (1, 2)})
        doc = bridge.call(store.alarms)[0]
        assert doc["id"] == alarm_id and doc["entrance"] == "b1-main" and doc["flat"] is None
        assert doc["evidence"] == {"snapshot": "d/x.jpg", "score": 0.5} and doc["detail"]["extra"] == [1, 2]
        assert bridge.call(store.outbox_depth) == 1 and len(woken) == 1
        with pytest.raises(StoreError, match="site 'elsewhere'"):
            alarms.raise_alarm("watchlist_face", "high", {"site": "elsewhere"}, {})
        assert bridge.call(store.outbox_depth) == 1
        events.record("face_visitor_attempt", {"time": 5.0, "person_id": None})
        events.record("face_unlock_ack", {"ack": {"id": "c1"}})
        log = bridge.call(store.access_log)
        assert [(e["kind"], e["at"]) for e in log] == [("face_unlock_ack", Clock().now()),
                                                        ("face_visitor_attempt", 5.0)]
        assert bridge.call(store.access_log, "face_unlock_ack", 10)[0]["payload"] == {"ack": {"id": "c1"}}
    finally:
        bridge.call(store.close)


@pytest.mark.parametrize("section,message", [
    ("yes", "expected a mapping"),
    ({"port": "80"}, r"hub.http.port: expected an integer"),
    ({"port": 70000}, r"hub.http.port"),
    ({"host": ""}, r"hub.http.host"),
    ({"bind": "x"}, r"unknown keys \['bind'\]"),
    ({"max_body_bytes": 0}, r"hub.http.max_body_bytes"),
])
def test_http_config_errors_name_the_key(section, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(section)


def test_http_config_defaults():
    assert parse_config({}) == {"host": "127.0.0.1", "port": 8080, "max_body_bytes": 10 * 1024 * 1024,
                                "body_timeout_s": 10.0, "backlog": 1024,
                                "allowed_hosts": ("127.0.0.1", "localhost", "::1"),
                                "secure_cookies": False}
