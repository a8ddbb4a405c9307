"""The virtual serial board with esptool in this process: its Python API and
its command line over the bare pty (the board starts in download mode there),
the ROM's slow flash read, the board's command log."""
import io
import os

import pytest

from host_tools.flash.progress import Progress
from simulator.rom.board import BoardError, VirtualBoard
from tests import flashkit


@pytest.fixture
def board(tmp_path):
    with VirtualBoard("esp32", tmp_path / "flash.bin") as b:
        yield b


def test_esptool_api_writes_reads_back_and_verifies(board):
    from esptool import cmds
    image = flashkit.esp_image(flashkit.ESP32, payload=os.urandom(3000))
    with cmds.detect_chip(board.port, 115200, "no-reset") as esp:
        assert esp.CHIP_NAME == "ESP32"
        assert esp.get_chip_description() == "ESP32-D0WD-V3 (revision v3.0)"
        assert esp.read_mac() == (0x24, 0x0A, 0xC4, 0x00, 0x00, 0x01)
        cmds.attach_flash(esp)
        assert cmds.detect_flash_size(esp) == "4MB"
        cmds.write_flash(esp, [(0x1000, image)], no_compress=True, no_progress=True)
        cmds.verify_flash(esp, [(0x1000, image)])
        # the ROM reads 64 bytes per command (READ_FLASH_SLOW)
        assert esp.read_flash(0x1000, 200) == image[:200]
    assert "FLASH_DATA" in board.commands and "READ_FLASH_SLOW" in board.commands
    assert "FLASH_DEFL_DATA" not in board.commands


def test_esptool_command_line_reads_the_mac(board, capsys):
    import esptool
    esptool.main(["--port", board.port, "--before", "no-reset", "--after", "no-reset",
                  "--no-stub", "read-mac"])
    assert "24:0a:c4:00:00:01" in capsys.readouterr().out


def test_after_the_stub_upload_it_answers_as_the_stub(board):
    import serial
    from esptool import cmds
    image = flashkit.esp_image(flashkit.ESP32, payload=os.urandom(20000) + bytes(30000))
    line = serial.serial_for_url(board.port, timeout=3)
    with cmds.detect_chip(line, 115200, "no-reset") as esp:
        esp = cmds.run_stub(esp)
        assert esp.IS_STUB
        cmds.attach_flash(esp)
        cmds.write_flash(esp, [(0x1000, image)], no_progress=True)  # compressed, 16 KB blocks
        cmds.verify_flash(esp, [(0x1000, image)])
        # the stub's own commands: streamed read (acknowledged packets, then the MD5), erase
        assert esp.read_flash(0x1000, len(image)) == image
        esp.erase_region(0x1000, 0x1000)
        assert esp.read_flash(0x1000, 16) == b"\xff" * 16
    for command in ("MEM_END", "FLASH_DEFL_DATA", "READ_FLASH", "ERASE_REGION"):
        assert command in board.commands
    assert [c for c in board.commands if "!" in c] == ["GET_SECURITY_INFO!unsupported"] * 2


def test_flash_file_size_is_checked(tmp_path):
    (tmp_path / "f.bin").write_bytes(b"\xff" * 10)
    with pytest.raises(BoardError, match="10 bytes, but the flash is 4194304 bytes"):
        VirtualBoard("esp32", tmp_path / "f.bin")
    with pytest.raises(BoardError, match="unknown chip 'esp8266'"):
        VirtualBoard("esp8266", tmp_path / "g.bin")


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_is_a_bar_on_a_terminal_and_lines_otherwise():
    tty = _Tty()
    p = Progress("writing", tty, width=10)
    p.update(50, 100)
    p.update(100, 100)
    assert tty.getvalue() == ("\rwriting [#####.....]  50% 50/100 bytes"
                              "\rwriting [##########] 100% 100/100 bytes\n")
    plain = io.StringIO()
    p = Progress("writing", plain)
    for done in range(0, 101, 5):
        p.update(done, 100)
    assert plain.getvalue().count("\n") == 11 and "writing: 50% (50 of 100 bytes)" in plain.getvalue()
