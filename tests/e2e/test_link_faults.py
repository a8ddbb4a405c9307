"""Devices keep working when their link fails: the access point gone, the
broker refusing the client, the broker silent. Each runs the unmodified
firmware in the simulator against real Mosquitto brokers (or a silent TCP
server standing in for a broker that accepts and never answers)."""
import asyncio
import textwrap

from simulator.runner import run_scenario

IDLE_OUTAGE = textwrap.dedent("""\
    name: access point gone for two hours, nothing else happens
    site: {id: wifi-idle, name: Wi-Fi idle}
    buildings:
      - id: b1
        flats:
          - id: 3-301
    devices:
      - id: smoke-301
        kind: smoke_sensor
        board: %(board)s
        flat: 3-301
        transport: mqtt
        smoke: {power: battery}
    timeline:
      - {at: 1m, device: smoke-301, action: link_down}
      - {at: 2h1m, device: smoke-301, action: link_up}
      - {at: 2h20m}
    expect:
      - {no_alarm: smoke}
    """)


def _run(path, tmp_path):
    lines = []
    ok, run = asyncio.run(run_scenario(path, out=lines.append, workdir=tmp_path / "run"))
    assert ok, "\n".join(lines[-40:])
    return run


def test_battery_smoke_sensor_keeps_its_radio_off_while_the_access_point_is_gone(tmp_path):
    path = tmp_path / "idle.yaml"
    path.write_text(IDLE_OUTAGE % {"board": "esp32c3"})
    run = _run(path, tmp_path)
    dev = run.sim.devices["smoke-301"]
    outage_s = 2 * 3600
    # before: every 5 s retry kept the radio on for its 3 s Wi-Fi timeout, about
    # 40 % of the outage and ~900 attempts; now attempts back off to 15 minutes
    # and the radio is off between them
    assert dev.wifi_connects < 30, dev.wifi_connects
    assert dev.wifi_radio_on_s() < 0.02 * outage_s, dev.wifi_radio_on_s()
    # and it reports again within one backoff interval (15 min) of the access point coming back
    t_back = run.t0 + 2 * 3600 + 60
    assert any(t >= t_back for t, *_ in run.frames.messages)
