"""Deploy benchmark: `anju deploy` (a subprocess, the real mpremote library)
copying a door sensor's app, runtime and config.json onto a virtual ESP32-C3
in app mode (the MicroPython unix port's REPL on the board's LittleFS2,
simulator/rom/app.py), beside the same files copied with mpremote's own
command line (`mpremote connect PORT fs cp -r ... :`), in the same run:

  deploy_full_s                  a fresh board: every file copied, hashed on the board, verified
  deploy_changed_s               the same board, config.json changed: one file copied
  deploy_mpremote_cp_full_s      mpremote's `fs cp -r` of the same files onto another fresh board
  deploy_mpremote_cp_changed_s   again after config.json changed (mpremote skips files
                                 whose hash on the board matches)
  deploy_full_vs_mpremote        deploy_full_s / deploy_mpremote_cp_full_s
  deploy_changed_vs_mpremote     deploy_changed_s / deploy_mpremote_cp_changed_s
  deploy_files, deploy_bytes     what a full deploy copies

Each is the whole command, wall time, with --no-wait (the firmware's boot is
not counted). The pty has no baud rate: these are the tools' and the REPL
protocol's costs, not a real board's (docs/flashing.md).

    python -m bench deploy
"""
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _timed(args, cwd=REPO):
    t0 = time.monotonic()
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600)
    seconds = time.monotonic() - t0
    if proc.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(args[:4]), proc.stderr.strip()[-500:]))
    return seconds, proc.stdout


def run(results):
    from host_tools import boards
    from host_tools.deploy.deploy import staged_files
    from simulator.rom.board import VirtualBoard
    board_file = boards.load("esp32c3")
    config = {"device_id": "door-101", "site": "estate", "kind": "door_sensor",
              "transport": "mqtt", "frame_key": "11" * 32, "bind_key": "22" * 16,
              "heartbeat_s": 3600, "mqtt": {"host": "127.0.0.1", "port": 1883},
              "wifi": {"ssid": "anju-sim"}}
    with tempfile.TemporaryDirectory(prefix="anju-deploy-bench-") as tmp:
        tmp = Path(tmp)
        cfg = tmp / "config.json"

        def deploy(port):
            cfg.write_text(json.dumps(config))
            return _timed([sys.executable, "-m", "host_tools.cli", "deploy", "--device",
                           "door-101", "--port", port, "--board", "esp32c3", "--config",
                           str(cfg), "--no-wait"])

        def mpremote_cp(port):
            stage = tmp / "stage"
            for path, data in staged_files(config, board_file).items():
                (stage / path).parent.mkdir(parents=True, exist_ok=True)
                (stage / path).write_bytes(data)
            names = sorted(os.listdir(stage))
            return _timed([sys.executable, "-m", "mpremote", "connect", port, "fs", "cp", "-r",
                           *names, ":"], cwd=stage)

        with VirtualBoard("esp32c3", tmp / "a.flash", mode="app", board=board_file) as board:
            seconds, _ = deploy(board.port)
            results["deploy_full_s"] = round(seconds, 2)
            config["heartbeat_s"] = 1800
            seconds, out = deploy(board.port)
            if " 1 file(s) copied" not in out:
                raise RuntimeError("the changed-config deploy copied more than config.json: " + out)
            results["deploy_changed_s"] = round(seconds, 2)
        files = staged_files(config, board_file)
        results["deploy_files"] = len(files)
        results["deploy_bytes"] = sum(len(d) for d in files.values())
        config["heartbeat_s"] = 3600
        with VirtualBoard("esp32c3", tmp / "b.flash", mode="app", board=board_file) as board:
            results["deploy_mpremote_cp_full_s"] = round(mpremote_cp(board.port)[0], 2)
            config["heartbeat_s"] = 1800
            results["deploy_mpremote_cp_changed_s"] = round(mpremote_cp(board.port)[0], 2)
    results["deploy_full_vs_mpremote"] = round(
        results["deploy_full_s"] / results["deploy_mpremote_cp_full_s"], 2)
    results["deploy_changed_vs_mpremote"] = round(
        results["deploy_changed_s"] / results["deploy_mpremote_cp_changed_s"], 2)
    for key in ("deploy_full_s", "deploy_changed_s", "deploy_mpremote_cp_full_s",
                "deploy_mpremote_cp_changed_s", "deploy_full_vs_mpremote",
                "deploy_changed_vs_mpremote", "deploy_files", "deploy_bytes"):
        print("%-30s %s" % (key, results[key]))
