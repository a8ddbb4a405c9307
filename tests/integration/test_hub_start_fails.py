"""A hub that cannot reach its broker at start exits non-zero within its
timeout, leaves no child process behind and never claims to be online, so
systemd's `Restart=always` can try again (docs/deploy-pi.md).

Runs `anju hub run` (the default `process` ingest: paho in a receiver child)
against a port where nothing listens and against a broker that refuses the
hub (CONNACK 5). Afterwards a real Mosquitto comes up on the absent broker's
port: no `online` may ever appear on the hub's availability topic. A broker
that only comes up after the hub started, within the timeout, is waited for.
"""
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from host_tools.mosquitto import Mosquitto
from simulator.fault_broker import FaultBroker

REPO = Path(__file__).resolve().parents[2]
CONNECT_TIMEOUT_S = 3
# start-up (imports, the receiver child) plus stopping, on a loaded machine
EXIT_WITHIN_S = CONNECT_TIMEOUT_S + 20

SITE = """
site: {id: lonely, name: Lonely Hub}
buildings:
  - id: b1
    flats:
      - id: b1-101
devices:
  - {id: door-101, kind: door_sensor, board: esp32c3, flat: b1-101, transport: mqtt,
     frame_key: "%s"}
""" % ("11" * 32)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run_hub(tmp_path, port, connect_timeout=CONNECT_TIMEOUT_S):
    """`anju hub run` in a session of its own (so its children can be found)."""
    (tmp_path / "site.yaml").write_text(SITE)
    log = open(tmp_path / "hub.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "host_tools.cli", "hub", "run", "--config",
         str(tmp_path / "site.yaml"), "--db", str(tmp_path / "hub.db"),
         "--mqtt", "127.0.0.1:%d" % port, "--upstream", "127.0.0.1:%d" % port,
         "--connect-timeout", str(connect_timeout)],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    return proc


def wait_log(tmp_path, proc, text, timeout=30):
    """Wait until the hub's log holds `text` while the hub keeps running."""
    end = time.monotonic() + timeout
    while text.encode() not in (tmp_path / "hub.log").read_bytes():
        assert proc.poll() is None and time.monotonic() < end, (tmp_path / "hub.log").read_text()
        time.sleep(0.05)


def group_alive(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def assert_fails_cleanly(tmp_path, proc):
    try:
        rc = proc.wait(timeout=EXIT_WITHIN_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail("the hub did not exit within %d s:\n%s"
                    % (EXIT_WITHIN_S, (tmp_path / "hub.log").read_text()[-3000:]))
    log = (tmp_path / "hub.log").read_text()
    assert rc != 0, log
    assert "not reachable within" in log, log
    # the receiver child (and anything else it started) is gone too
    end = time.monotonic() + 10
    while group_alive(proc.pid) and time.monotonic() < end:
        time.sleep(0.05)
    alive = group_alive(proc.pid)
    if alive:
        os.killpg(proc.pid, signal.SIGKILL)
    assert not alive, "a process of the failed hub is still running"


def test_absent_broker_exit_non_zero_no_child_and_never_online(tmp_path):
    port = free_port()
    proc = run_hub(tmp_path, port)
    assert_fails_cleanly(tmp_path, proc)
    # the broker comes up later: nothing of the failed hub may announce it online
    with Mosquitto(tmp_path / "broker", port=port).start() as broker:
        seen = []
        ready = threading.Event()
        c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="watcher")
        c.on_connect = lambda c, u, f, rc, p: c.subscribe("anju/lonely/hub/availability", 1)
        c.on_subscribe = lambda c, u, mid, rcs, p: ready.set()
        c.on_message = lambda c, u, m: seen.append(bytes(m.payload))
        c.connect(broker.host, broker.port)
        c.loop_start()
        try:
            assert ready.wait(10)
            time.sleep(2.0)  # a receiver left behind retries every 0.2-5 s
        finally:
            c.loop_stop()
            c.disconnect()
        assert b"online" not in seen, seen


def test_refusing_broker_exit_non_zero_and_no_child(tmp_path):
    broker = FaultBroker("refuse")
    try:
        proc = run_hub(tmp_path, broker.port)
        assert_fails_cleanly(tmp_path, proc)
        assert broker.connects >= 1
    finally:
        broker.close()


def test_a_broker_slow_at_boot_is_waited_for(tmp_path):
    port = free_port()
    proc = run_hub(tmp_path, port, connect_timeout=60)
    try:
        wait_log(tmp_path, proc, "device broker not reachable")
        with Mosquitto(tmp_path / "broker", port=port).start():
            wait_log(tmp_path, proc, "hub started")
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=30) == 0, (tmp_path / "hub.log").read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_sigterm_while_waiting_for_the_broker_stops_at_once(tmp_path):
    port = free_port()
    proc = run_hub(tmp_path, port, connect_timeout=120)
    try:
        wait_log(tmp_path, proc, "device broker not reachable")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)  # far below the 120 s connect timeout
        end = time.monotonic() + 10
        while group_alive(proc.pid) and time.monotonic() < end:
            time.sleep(0.05)
        assert not group_alive(proc.pid), "a process of the stopped hub is still running"
    finally:
        if group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
