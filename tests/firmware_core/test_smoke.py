"""Smoke alarm core (anju.smoke, anju.temporal, anju.command): calibration,
confirmation, hysteresis, hush, self-test, trouble conditions, interconnect.

Plain functions and asserts so the same file runs under CPython (pytest) and
under MicroPython (unix-port harness).
"""
import struct

from anju import command, frame, smoke, temporal

CFG = smoke.SmokeConfig(drift_window=10, drift_step=8)  # alarm 3200, warning 1920
DARK = 1800
CLEAN = 4200
MV = 2950
T0 = 1000


def run(state, nets, now, cfg=CFG, mv=MV, dark=DARK):
    """Feed one sample per second with the given net smoke counts."""
    out = []
    for n in nets:
        state, acts = smoke.handle(state, ("sample", dark, dark + CLEAN + n, mv), now, cfg)
        out.append((now, acts))
        now += 1
    return state, out, now


def calibrated(cfg=CFG):
    s = smoke.SmokeState(installed=T0)
    s, _, now = run(s, [0] * cfg.calibration, T0, cfg)
    assert s.baseline == CLEAN and s.factory == CLEAN
    return s, now


def sends(out, mtype):
    return [(t, a[2]) for t, acts in out for a in acts if a[0] == "send" and a[1] == mtype]


def sirens(out):
    return [(t, a[1]) for t, acts in out for a in acts if a[0] == "siren"]


def test_alarm_needs_confirm_consecutive_samples_and_siren_comes_before_send():
    s, now = calibrated()
    s, out, now = run(s, [3300] * (CFG.confirm - 1), now)
    assert s.level != smoke.ALARM
    s, out, now = run(s, [3300], now)
    assert s.level == smoke.ALARM
    acts = out[0][1]
    assert acts[0] == ("siren", "alarm"), acts
    smoke_frames = [a for a in acts if a[0] == "send" and a[1] == smoke.T_SMOKE]
    assert len(smoke_frames) == 1
    level, cause, net, thr = struct.unpack(">BBHH", smoke_frames[0][2])
    assert (level, cause, thr) == (smoke.ALARM, smoke.CAUSE_CHAMBER, 3200)
    assert acts[-1] == ("next_sample", CFG.fast_s)


def test_a_dip_below_threshold_restarts_confirmation():
    s, now = calibrated()
    s, out, now = run(s, [3300, 3300, 3300, 100, 3300, 3300, 3300], now)
    assert s.level != smoke.ALARM
    assert not sirens(out)


def test_hysteresis_keeps_alarm_until_clear_samples_below_clear_level():
    s, now = calibrated()
    s, _, now = run(s, [4000] * CFG.confirm, now)
    assert s.level == smoke.ALARM
    # between the clear level (2240) and the threshold: stays in alarm
    s, out, now = run(s, [2500] * 20, now)
    assert s.level == smoke.ALARM and not sirens(out)
    s, out, now = run(s, [100] * (CFG.clear - 1), now)
    assert s.level == smoke.ALARM
    s, out, now = run(s, [100], now)
    assert s.level == smoke.NORMAL
    assert sirens(out) == [(now - 1, "off")]
    assert struct.unpack(">BBHH", sends(out, smoke.T_SMOKE)[0][1])[0] == smoke.NORMAL


def test_warning_level_reported_without_siren():
    s, now = calibrated()
    s, out, now = run(s, [2000, 2000], now)
    assert s.level == smoke.WARNING
    assert not sirens(out)
    assert struct.unpack(">BBHH", sends(out, smoke.T_SMOKE)[0][1])[0] == smoke.WARNING


def test_rising_reading_samples_fast_clean_air_samples_slow():
    s, now = calibrated()
    s, out, now = run(s, [0], now)
    assert out[-1][1][-1] == ("next_sample", CFG.sample_s)
    s, out, now = run(s, [CFG.rise + 10], now)
    assert out[-1][1][-1] == ("next_sample", CFG.fast_s)


def test_sensitivity_sets_threshold():
    for level, counts in ((1, 2400), (2, 3200), (3, 4000)):
        assert smoke.SmokeConfig(sensitivity=level).alarm == counts
    try:
        smoke.SmokeConfig(sensitivity=4)
    except ValueError:
        pass
    else:
        raise AssertionError("sensitivity 4 accepted")


def hush_outcomes(out):
    return [struct.unpack(">BH", b)[0] for _, b in sends(out, smoke.T_HUSH)]


def test_hush_below_high_level_mutes_then_ends_on_its_own():
    s, now = calibrated()
    s, _, now = run(s, [4000] * CFG.confirm, now)
    s, acts = smoke.handle(s, ("button",), now, CFG)
    assert acts[0] == ("siren", "off")
    assert s.muted(now)
    s, out, now = run(s, [4000] * 10, now)
    assert not sirens(out)
    # hush_s later it ends by itself and the siren returns (smoke still there)
    s, out, now = run(s, [4000], now + CFG.hush_s)
    assert hush_outcomes(out) == [smoke.HUSH_ENDED]
    assert sirens(out) == [(now - 1, "alarm")]


def test_hush_refused_above_high_level():
    s, now = calibrated()
    s, _, now = run(s, [CFG.hush_max + 100] * CFG.confirm, now)
    s, acts = smoke.handle(s, ("button",), now, CFG)
    assert not s.muted(now)
    assert not [a for a in acts if a[0] == "siren"]
    assert [struct.unpack(">BH", a[2])[0] for a in acts if a[0] == "send"] == [smoke.HUSH_REFUSED]


def test_smoke_growing_past_high_level_ends_hush():
    s, now = calibrated()
    s, _, now = run(s, [4000] * CFG.confirm, now)
    s, _ = smoke.handle(s, ("button",), now, CFG)
    s, out, now = run(s, [CFG.hush_max + 500], now)
    assert sirens(out)[0][1] == "alarm"
    assert not s.muted(now)


def test_button_in_clean_air_runs_self_test_and_reports_each_part():
    s, now = calibrated()
    s, acts = smoke.handle(s, ("button",), now, CFG)
    assert ("self_test",) in acts and s.testing == 1
    assert smoke.flags(s, now) & smoke.F_TESTING
    s, acts = smoke.handle(s, ("test_done", True, False, True), now, CFG)
    body = [a[2] for a in acts if a[0] == "send" and a[1] == smoke.T_SELF_TEST][0]
    assert struct.unpack(">BB", body) == (0b101, 0)
    assert s.testing == 0


def test_low_battery_reports_and_chirps_once_per_interval():
    s, now = calibrated()
    s, out, now = run(s, [0] * 3, now, mv=2550)
    assert s.low == 1
    assert len(sends(out, smoke.T_BATTERY)) == 1
    assert [p for _, p in sirens(out)] == ["chirp"]
    s, out, now = run(s, [0], now + CFG.chirp_s, mv=2550)
    assert [p for _, p in sirens(out)] == ["chirp"]


def test_end_of_service_after_lifetime():
    cfg = smoke.SmokeConfig(lifetime_s=1000)
    s, now = calibrated(cfg)
    s, out, now = run(s, [0], T0 + 1000, cfg)
    assert s.eos == 1
    assert struct.unpack(">BB", sends(out, smoke.T_FAULT)[0][1]) == (smoke.FAULT_END_OF_SERVICE, 1)
    assert [p for _, p in sirens(out)] == ["chirp2"]
    assert smoke.flags(s, now) & smoke.F_EOS


def test_chamber_out_of_range_is_a_fault_and_clears():
    s, now = calibrated()
    out = []
    for _ in range(CFG.fault_confirm):
        s, acts = smoke.handle(s, ("sample", DARK, DARK + 10, MV), now, CFG)  # LED dead
        out.append((now, acts))
        now += 1
    assert s.fault == smoke.FAULT_CHAMBER
    assert struct.unpack(">BB", sends(out, smoke.T_FAULT)[0][1]) == (smoke.FAULT_CHAMBER, 1)
    s, out, now = run(s, [0], now)
    assert s.fault == smoke.FAULT_NONE


def test_baseline_follows_dust_slowly_and_reports_contamination():
    s, now = calibrated()
    # 200 windows of clean samples with a little dust each time
    dust = 0
    for _ in range(200):
        dust += 5
        s, _, now = run(s, [dust] * CFG.drift_window, now)
    assert s.level == smoke.NORMAL
    assert s.baseline - CLEAN == 1000, s.baseline
    assert smoke.contamination(s, CFG) == 25


def test_baseline_never_moves_towards_smoke():
    s, now = calibrated()
    for _ in range(20):
        s, _, now = run(s, [CFG.clean_band + 50] * CFG.drift_window, now)
    assert s.baseline == CLEAN


def test_interconnect_sounds_and_reports_cause():
    s, now = calibrated()
    s, acts = smoke.handle(s, ("interconnect", 1), now, CFG)
    assert acts[0] == ("siren", "alarm")
    body = [a[2] for a in acts if a[0] == "send" and a[1] == smoke.T_SMOKE][0]
    assert struct.unpack(">BBHH", body)[:2] == (smoke.ALARM, smoke.CAUSE_INTERCONNECT)
    assert smoke.flags(s, now) & smoke.F_INTERCONNECT
    s, acts = smoke.handle(s, ("interconnect", 0), now, CFG)
    assert acts[0] == ("siren", "off")


def test_temporal3_pattern():
    assert temporal.total_ms(temporal.ALARM) == temporal.CYCLE_MS == 4000
    on = [t for t in range(0, 4000, 50) if temporal.level_at(temporal.ALARM, True, t)]
    assert on[0] == 0 and len(on) == 30  # three 500 ms tones
    assert temporal.level_at(temporal.ALARM, True, 2600) == 0
    assert temporal.level_at(temporal.ALARM, True, 4100) == 1


KEY = bytes(range(32))


def test_command_verifies_and_rejects_forged_and_replayed():
    c = command.encode(KEY, b"smoke-2", command.T_INTERCONNECT, 7, 0, command.interconnect_body(1))
    assert command.verify(KEY, b"smoke-2", c, 6)[1] == 7
    for data, last, reason in ((c, 7, "replayed"), (c[:-1] + b"\x00", 0, "bad_tag")):
        try:
            command.verify(KEY, b"smoke-2", data, last)
        except frame.FrameError as exc:
            assert exc.reason == reason, exc.reason
        else:
            raise AssertionError("accepted " + reason)
    # a frame the device itself signed is not a command
    reflected = frame.encode(KEY, b"smoke-2", command.T_INTERCONNECT, 8, 0, b"\x01\x00")
    try:
        command.verify(KEY, b"smoke-2", reflected, 0)
    except frame.FrameError as exc:
        assert exc.reason == "bad_tag"
    else:
        raise AssertionError("reflected device frame accepted as a command")


def test_config_from_defaults_and_overrides():
    cfg, opts = smoke.config_from({}, 600)
    assert (cfg.alarm, cfg.confirm, cfg.sample_s, cfg.heartbeat_s) == (3200, 4, 8, 600)
    assert opts["power"] == "mains" and opts["cmd_poll_ms"] == 500
    cfg, opts = smoke.config_from({"smoke": {"sensitivity": 1, "hush_s": 60, "power": "battery",
                                             "lifetime_s": 1200}})
    assert (cfg.alarm, cfg.hush_s, cfg.lifetime_s, opts["power"]) == (2400, 60, 1200, "battery")


def test_config_from_refuses_bad_values_naming_the_key():
    cases = (({"smoke": {"sensitivity": 5}}, "smoke.sensitivity"),
             ({"smoke": {"hush_s": True}}, "smoke.hush_s"),
             ({"smoke": {"hush_s": "60"}}, "smoke.hush_s"),
             ({"smoke": {"power": "solar"}}, "smoke.power"),
             ({"smoke": {"volume": 3}}, "smoke.volume"),
             ({"smoke": []}, "'smoke'"))
    for d, key in cases:
        try:
            smoke.config_from(d)
        except ValueError as exc:
            assert key in str(exc), (key, str(exc))
        else:
            raise AssertionError("accepted %r" % (d,))
