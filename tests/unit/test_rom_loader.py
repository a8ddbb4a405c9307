"""The virtual board's ROM loader and SLIP codec (simulator/rom/), without a line."""
import hashlib
import struct
import zlib

import pytest

from simulator.rom import chips, slip
from simulator.rom.loader import SYNC_BODY, RomLoader, checksum


@pytest.mark.parametrize("packet", [b"", b"abc", b"\xc0", b"\xdb", b"\xc0\xdb\xdc\xdd" * 5,
                                    bytes(range(256))])
def test_slip_round_trip(packet):
    encoded = slip.encode(packet)
    assert encoded[0] == encoded[-1] == 0xC0 and 0xC0 not in encoded[1:-1]
    d = slip.Decoder()
    assert d.feed(encoded) == ([packet] if packet else [])


def test_slip_decoder_takes_bytes_as_they_come_and_skips_noise():
    stream = b"boot log\r\n" + slip.encode(b"one\xc0") + slip.encode(b"two\xdb") + b"\xc0\xc0"
    d = slip.Decoder()
    got = []
    for b in stream:
        got += d.feed(bytes([b]))
    assert got == [b"one\xc0", b"two\xdb"]


def test_slip_bad_escape_drops_the_frame():
    d = slip.Decoder()
    assert d.feed(b"\xc0ab\xdb\x01cd\xc0" + slip.encode(b"ok")) == [b"ok"]
    assert d.bad_frames == 1


def request(op, data=b"", chk=0):
    return struct.pack("<BBHI", 0, op, len(data), chk) + data


def answer(loader, op, data=b"", chk=0):
    responses = loader.handle(request(op, data, chk))
    direction, op_ret, size, value = struct.unpack("<BBHI", responses[-1][:8])
    body = responses[-1][8:]
    assert direction == 1 and size == len(body)
    return op_ret, value, body[:-4], body[-4:-2], len(responses)


@pytest.fixture
def rom():
    return RomLoader(chips.esp32c3(), bytearray(b"\xff" * chips.FLASH_SIZE))


def test_sync_is_answered_eight_times(rom):
    op, value, _, status, n = answer(rom, 0x08, SYNC_BODY)
    assert (op, status, n) == (0x08, b"\0\0", 8) and value != 0


def test_chip_detection_answers(rom):
    assert answer(rom, 0x0A, struct.pack("<I", chips.CHIP_DETECT_MAGIC_REG))[1] == 0x1B31506F
    body = answer(rom, 0x14)[2]
    assert struct.unpack("<IBBBBBBBBII", body)[9] == 5  # chip id
    esp32 = RomLoader(chips.esp32(), bytearray(16))
    op, _, _, status, _ = answer(esp32, 0x14)  # the ESP32's ROM has no GET_SECURITY_INFO
    assert op != 0x14 and status == b"\x01\x05"


def _block(seq, data):
    return struct.pack("<IIII", len(data), seq, 0, 0) + data


def test_flash_write_md5_and_bad_checksum(rom):
    data = bytes(range(256)) * 4
    assert answer(rom, 0x02, struct.pack("<IIIII", 0x2000, 2, 0x400, 0x1000, 0))[3] == b"\0\0"
    # a block whose checksum field is wrong is refused with 0x07 and not written
    assert answer(rom, 0x03, _block(0, data), checksum(data) ^ 1)[3] == b"\x01\x07"
    assert rom.flash[0x1000:0x1400] == b"\xff" * 0x400
    assert answer(rom, 0x03, _block(0, data), checksum(data))[3] == b"\0\0"
    # out of sequence
    assert answer(rom, 0x03, _block(5, data), checksum(data))[3] == b"\x01\x06"
    md5 = answer(rom, 0x13, struct.pack("<IIII", 0x1000, 0x400, 0, 0))[2]
    assert md5 == hashlib.md5(data).hexdigest().encode()
    assert rom.log[-4:] == ["FLASH_DATA!0x07", "FLASH_DATA", "FLASH_DATA!0x06", "SPI_FLASH_MD5"]


def test_flash_is_nor_a_write_only_clears_bits(rom):
    answer(rom, 0x02, struct.pack("<IIIII", 4, 1, 0x400, 0, 0))  # erases sector 0
    assert rom.flash[0:0x1000] == b"\xff" * 0x1000
    rom.flash[0:4] = b"\x0f\x0f\x0f\x0f"  # as if the erase had not happened
    answer(rom, 0x03, _block(0, b"\xf3" * 4), checksum(b"\xf3" * 4))
    assert rom.flash[0:4] == b"\x03" * 4
    # a write past what FLASH_BEGIN erased is refused
    answer(rom, 0x02, struct.pack("<IIIII", 0x2000, 4, 0x400, 0x4000, 0))
    rom._write["erased_to"] = 0x4000
    assert answer(rom, 0x03, _block(0, b"\0" * 4), checksum(b"\0" * 4))[3] == b"\x01\x08"


def test_deflate_write(rom):
    image = b"anju" * 5000
    packed = zlib.compress(image, 9)
    answer(rom, 0x10, struct.pack("<IIIII", 0x5000, 1, 0x400, 0x3000, 0))
    assert answer(rom, 0x11, _block(0, packed), checksum(packed))[3] == b"\0\0"
    assert rom.flash[0x3000:0x3000 + len(image)] == image
    answer(rom, 0x10, struct.pack("<IIIII", 0x1000, 1, 0x400, 0x3000, 0))
    assert answer(rom, 0x11, _block(0, b"junk"), checksum(b"junk"))[3] == b"\x01\x0b"


def test_spi_rdid_gives_the_flash_size(rom):
    base, spi = rom.chip.spi_base, rom.chip.spi
    answer(rom, 0x09, struct.pack("<IIII", base + spi["usr2"], (7 << 28) | 0x9F, 0xFFFFFFFF, 0))
    answer(rom, 0x09, struct.pack("<IIII", base + spi["cmd"], 1 << 18, 0xFFFFFFFF, 0))
    assert answer(rom, 0x0A, struct.pack("<I", base + spi["cmd"]))[1] & (1 << 18) == 0
    flash_id = answer(rom, 0x0A, struct.pack("<I", base + spi["w0"]))[1]
    assert flash_id == 0x1640C8  # GigaDevice, 2^0x16 bytes = 4 MB


def test_unknown_and_malformed_requests(rom):
    assert answer(rom, 0x55)[3] == b"\x01\x05"
    assert rom.handle(b"\x01\x08")[0][8:10] == b"\x01\x05"
    bad_len = struct.pack("<BBHI", 0, 0x0A, 9, 0) + b"\0\0\0\0"
    assert rom.handle(bad_len)[0][8:10] == b"\x01\x05"


def test_flash_end_leaves_the_loader(rom):
    answer(rom, 0x02, struct.pack("<IIIII", 0, 0, 0x400, 0, 0))
    answer(rom, 0x04, struct.pack("<I", 1))
    assert rom.run_requested


def test_a_started_program_answers_as_the_stub(rom):
    answer(rom, 0x05, struct.pack("<IIII", 4, 1, 0x1800, 0x40380000))
    answer(rom, 0x07, _block(0, b"code"), checksum(b"code"))
    responses = rom.handle(request(0x06, struct.pack("<II", 0, 0x40380004)))
    assert responses[1] == b"OHAI" and rom.stub
    assert struct.unpack("<I", rom.handle(request(0x08, SYNC_BODY))[0][4:8])[0] == 0  # SYNC: 0
    reply = rom.handle(request(0x13, struct.pack("<IIII", 0, 16, 0, 0)))[0]
    assert reply[8:] == hashlib.md5(b"\xff" * 16).digest() + b"\0\0"  # raw MD5, 2 status bytes
    answer_bad = rom.handle(request(0x03, _block(0, b"x"), 0))[0]
    assert answer_bad[8:] == b"\xc6\x00"  # not in flash mode: the stub's code
    rom.handle(request(0x10, struct.pack("<IIIII", 4, 1, 0x4000, 0, 0)))
    rom.handle(request(0x12, struct.pack("<I", 1)))
    assert not rom.run_requested  # the stub stays unless asked to reboot
    assert rom.handle(request(0xD1, struct.pack("<II", 0, 0x1000)))[0][8:] == b"\0\0"


def test_stub_commands_are_unknown_to_the_rom(rom):
    assert answer(rom, 0xD0)[3] == b"\x01\x05"
