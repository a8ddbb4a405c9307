"""`anju flash` end to end: the real esptool, through `anju` as a subprocess,
against the virtual serial board (simulator/rom/) on a pty, reset through
DTR/RTS over an RFC 2217 port; and the Pico W path onto a directory standing
in for the BOOTSEL drive."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simulator.rom.board import VirtualBoard
from simulator.rom.loader import FLASH_WRITES
from tests import flashkit

REPO = Path(__file__).resolve().parents[2]
INFO_UF2 = "UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\nBoard-ID: RPI-RP2\n"


def anju_flash(*args, env=None, timeout=120):
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "host_tools.cli", "flash", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    proc.seconds = time.monotonic() - t0
    return proc


@pytest.fixture
def make_board(tmp_path):
    made = []

    def factory(chip, **kwargs):
        board = VirtualBoard(chip, tmp_path / ("%s-%d.flash" % (chip, len(made))), **kwargs)
        made.append(board)
        return board

    yield factory
    for board in made:
        board.close()


def _image(tmp_path, chip_id, name, size=120_000):
    # part random (does not compress), part zeros (does): a few dozen blocks either way
    data = flashkit.esp_image(chip_id, payload=os.urandom(size // 4) + bytes(size - size // 4))
    path = tmp_path / name
    path.write_bytes(data)
    return path, data


@pytest.mark.parametrize("board_name, chip_id, offset, route, stub", [
    ("esp32", flashkit.ESP32, 0x1000, "rfc2217", True),
    ("esp32c3", flashkit.ESP32C3, 0x0, "rfc2217", True),
    ("esp32", flashkit.ESP32, 0x1000, "rfc2217", False),
    ("esp32c3", flashkit.ESP32C3, 0x0, "pty", False),
])
def test_flashes_verifies_and_resets(tmp_path, make_board, board_name, chip_id, offset, route,
                                     stub):
    # over RFC 2217 the board starts running its app: only esptool's reset
    # sequence on DTR/RTS gets it into download mode. A bare pty has no lines,
    # so there the board starts in download mode.
    board = make_board(board_name, mode="app" if route == "rfc2217" else "download")
    port = board.serve_rfc2217() if route == "rfc2217" else board.port
    path, data = _image(tmp_path, chip_id, "fw.bin")
    proc = anju_flash("--board", board_name, "--port", port, "--firmware", str(path),
                      "--baud", "921600", *(() if stub else ("--no-stub",)))
    assert proc.returncode == 0, proc.stderr
    assert "verified" in proc.stdout and "flashed %s" % board_name in proc.stdout
    flash = board.flash_path.read_bytes()
    assert flash[offset:offset + len(data)] == data
    assert flash[:offset] == b"\xff" * offset
    assert "FLASH_DEFL_DATA" in board.commands and "SPI_FLASH_MD5" in board.commands
    # the stub is uploaded (MEM_*) and answers from then on, or the ROM does it all
    assert ("MEM_END" in board.commands) == stub
    assert not [c for c in board.commands if "!" in c and not c.startswith("GET_SECURITY_INFO")]
    if route == "rfc2217":
        # reset into the ROM loader, and at the end a hard reset into the app
        assert "boot:download" in board.events and board.events[-1] == "boot:app"
        assert board.mode == "app"
    print("%s over %s%s: %d bytes flashed in %.1f s"
          % (board_name, route, "" if stub else " (no stub)", len(data), proc.seconds))


def test_progress_is_a_bar_on_a_terminal(tmp_path, make_board):
    import pty
    import threading
    board = make_board("esp32c3")
    path, data = _image(tmp_path, flashkit.ESP32C3, "fw.bin", size=40_000)
    master, slave = pty.openpty()
    seen = bytearray()

    def drain():
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                return
            if not chunk:
                return
            seen.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    proc = subprocess.run([sys.executable, "-m", "host_tools.cli", "flash", "--board", "esp32c3",
                           "--port", board.port, "--firmware", str(path), "--no-stub"],
                          cwd=REPO, stdout=subprocess.PIPE, stderr=slave, timeout=120)
    os.close(slave)
    reader.join(timeout=5)
    os.close(master)
    assert proc.returncode == 0
    text = seen.decode(errors="replace")
    assert "\rwriting [" in text and "] 100% " in text


def test_image_for_another_chip_is_refused_before_any_write(tmp_path, make_board):
    board = make_board("esp32", mode="app")
    url = board.serve_rfc2217()
    path, _ = _image(tmp_path, flashkit.ESP32C3, "c3.bin", size=4000)
    proc = anju_flash("--board", "esp32", "--port", url, "--firmware", str(path))
    assert proc.returncode == 2
    assert "is an image for ESP32-C3, not for ESP32" in proc.stderr
    assert "c3.bin" in proc.stderr
    assert not any(c.split("!")[0] in FLASH_WRITES for c in board.commands)
    assert board.flash_path.read_bytes() == b"\xff" * len(board.flash)


def test_chip_other_than_the_board_is_refused_before_any_write(tmp_path, make_board):
    board = make_board("esp32c3", mode="app")   # an ESP32-C3 on the port...
    url = board.serve_rfc2217()
    path, _ = _image(tmp_path, flashkit.ESP32, "esp32.bin", size=4000)  # ...flashed as an ESP32
    proc = anju_flash("--board", "esp32", "--port", url, "--firmware", str(path))
    assert proc.returncode == 2, proc.stderr
    assert "is an ESP32-C3" in proc.stderr and "board esp32 is an ESP32" in proc.stderr
    assert "SYNC" in board.commands  # it did talk to the chip
    assert not any(c.split("!")[0] in FLASH_WRITES for c in board.commands)


def test_pulled_cable_mid_write_is_a_clear_failure(tmp_path, make_board):
    board = make_board("esp32c3", mode="app", pull_cable_after_blocks=3)
    url = board.serve_rfc2217()
    path, _ = _image(tmp_path, flashkit.ESP32C3, "fw.bin", size=400_000)  # 7 stub blocks
    # esptool waits for a lost board to come back (7 tries, 1 s apart);
    # its own config file shortens that here (3 tries also for the first connect)
    cfg = tmp_path / "esptool.cfg"
    cfg.write_text("[esptool]\nconnect_attempts = 3\n")
    proc = anju_flash("--board", "esp32c3", "--port", url, "--firmware", str(path),
                      env={"ESPTOOL_CFGFILE": str(cfg)})
    assert proc.returncode == 1, proc.stderr
    err = proc.stderr.strip().splitlines()[-1]
    assert err.startswith("anju: error: the board on %s stopped answering while writing" % url)
    assert "partly written, flash it again" in err
    assert "cable pulled" in board.events
    assert "Traceback" not in proc.stderr


def test_flash_that_does_not_verify_is_a_clear_failure(tmp_path, make_board):
    board = make_board("esp32", mode="app", stuck_byte=0x1000 + 500)
    url = board.serve_rfc2217()
    payload = bytes(1000)  # byte 500 of the image is in this payload: a 0 the flash keeps at 1
    path = tmp_path / "fw.bin"
    path.write_bytes(flashkit.esp_image(flashkit.ESP32, payload=payload))
    proc = anju_flash("--board", "esp32", "--port", url, "--firmware", str(path))
    assert proc.returncode == 1
    assert "was written to the board on %s, but the flash does not verify" % url in proc.stderr
    assert "MD5" in proc.stderr


def test_no_chip_on_the_port(tmp_path, make_board):
    # the board runs its app; on a bare pty esptool cannot reset it (no DTR/RTS)
    board = make_board("esp32", mode="app")
    path, _ = _image(tmp_path, flashkit.ESP32, "fw.bin", size=4000)
    cfg = tmp_path / "esptool.cfg"
    cfg.write_text("[esptool]\nconnect_attempts = 1\n")
    proc = anju_flash("--board", "esp32", "--port", board.port, "--firmware", str(path),
                      env={"ESPTOOL_CFGFILE": str(cfg)})
    assert proc.returncode == 1
    assert "no ESP chip answered on %s" % board.port in proc.stderr
    assert "No serial data received" in proc.stderr
    assert board.commands == []  # the app does not answer the ROM protocol


def test_without_firmware_it_says_which_image_and_where(tmp_path):
    proc = anju_flash("--board", "esp32c3", "--port", "/dev/null",
                      "--firmware-dir", str(tmp_path / "none"))
    assert proc.returncode == 2
    for part in ("MicroPython 1.27.0", "ESP32_GENERIC_C3-*-v1.27.0.bin",
                 "https://micropython.org/download/ESP32_GENERIC_C3/", "never downloads"):
        assert part in proc.stderr
    proc = anju_flash("--board", "pico_w", "--firmware-dir", str(tmp_path / "none"))
    assert proc.returncode == 2 and "RPI_PICO_W-*-v1.27.0.uf2" in proc.stderr


@pytest.fixture
def bootsel(tmp_path):
    drive = tmp_path / "media" / "user" / "RPI-RP2"
    drive.mkdir(parents=True)
    (drive / "INFO_UF2.TXT").write_text(INFO_UF2)
    return drive


def test_pico_w_uf2_is_copied_onto_the_bootsel_drive(tmp_path, bootsel):
    fw_dir = tmp_path / "fw"
    fw_dir.mkdir()
    image = flashkit.uf2(blocks=40)
    (fw_dir / "RPI_PICO_W-20251209-v1.27.0.uf2").write_bytes(image)
    proc = anju_flash("--board", "pico_w", "--port", str(bootsel), "--firmware-dir", str(fw_dir))
    assert proc.returncode == 0, proc.stderr
    assert (bootsel / "RPI_PICO_W-20251209-v1.27.0.uf2").read_bytes() == image
    assert "40 UF2 blocks" in proc.stdout


@pytest.mark.parametrize("image, message", [
    (flashkit.uf2(family=0xE48BFF59), "family id 0xe48bff59 (rp2350-arm-s), the board needs 0xe48bff56"),
    (flashkit.esp_image(flashkit.ESP32C3), "is not a whole number of 512-byte UF2 blocks"),
    (b"\0" * 1024, "block 0 is not a UF2 block"),
])
def test_pico_w_refuses_what_is_not_an_rp2040_uf2(tmp_path, bootsel, image, message):
    path = tmp_path / "fw.uf2"
    path.write_bytes(image)
    proc = anju_flash("--board", "pico_w", "--port", str(bootsel), "--firmware", str(path))
    assert proc.returncode == 2
    assert message in proc.stderr
    assert sorted(p.name for p in bootsel.iterdir()) == ["INFO_UF2.TXT"]


def test_pico_w_port_must_be_a_bootsel_drive(tmp_path):
    path = tmp_path / "fw.uf2"
    path.write_bytes(flashkit.uf2())
    proc = anju_flash("--board", "pico_w", "--port", str(tmp_path), "--firmware", str(path))
    assert proc.returncode == 2 and "is not a BOOTSEL drive" in proc.stderr
