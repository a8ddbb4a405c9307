"""anju flash's checks before writing: ESP images, UF2 files, the board's flash."""
import struct

import pytest

from host_tools import boards
from host_tools.flash import ImageError, Refused, esp, firmware, images, pico
from tests import flashkit


def test_the_test_image_is_one_esptool_accepts():
    from esptool.bin_image import LoadFirmwareImage
    data = flashkit.esp_image(flashkit.ESP32C3, payload=b"\x11" * 999)
    parsed = LoadFirmwareImage("esp32c3", data)
    assert parsed.chip_id == 5 and len(parsed.segments) == 2
    assert parsed.checksum == parsed.calculate_checksum()
    assert parsed.stored_digest == parsed.calc_digest


@pytest.mark.parametrize("chip_id, mcu", [(0, "esp32"), (5, "esp32c3")])
def test_esp_image_for_its_chip(chip_id, mcu):
    data = flashkit.esp_image(chip_id, pad_to=70000)  # a merged .bin goes on past the first image
    info = images.check_esp_image_for(data, mcu, "fw.bin")
    assert info["chip"] == mcu and info["segments"] == 2 and info["hash_appended"]
    assert info["length"] < len(data)


def test_esp_image_without_hash():
    data = flashkit.esp_image(0, hash_appended=False)
    assert images.esp_image(data)["length"] == len(data)


def test_image_for_another_chip_names_both():
    with pytest.raises(ImageError) as e:
        images.check_esp_image_for(flashkit.esp_image(5), "esp32", "fw.bin")
    assert str(e.value) == ("fw.bin is an image for ESP32-C3, not for ESP32 "
                            "(image chip id 5, ESP32 needs 0)")
    with pytest.raises(ImageError, match="an unknown chip \\(image chip id 77\\)"):
        images.check_esp_image_for(flashkit.esp_image(77), "esp32c3", "fw.bin")


def _flip(data, index):
    data = bytearray(data)
    data[index] ^= 0x01
    return bytes(data)


@pytest.mark.parametrize("mangle, message", [
    (lambda d: b"\x7fELF" + d[4:], "not an ESP image \\(first byte 0x7f"),
    (lambda d: d[:1] + b"\x00" + d[2:], "0 segments"),
    (lambda d: d[:23] + b"\x07" + d[24:], "hash flag is 0x07"),
    (lambda d: d[:100], "runs past the end"),
    (lambda d: _flip(d, 40), "checksum 0x"),
    (lambda d: _flip(d, len(d) - 1), "SHA-256 does not match"),
    (lambda d: d[:10], "too short"),
])
def test_broken_esp_images_are_refused(mangle, message):
    with pytest.raises(ImageError, match=message):
        images.esp_image(mangle(flashkit.esp_image(0)), "fw.bin")


def test_uf2_for_the_rp2040():
    info = images.uf2(flashkit.uf2(blocks=5), "fw.uf2", flash_size=2 * 1024 * 1024)
    assert info == {"blocks": 5, "family": 0xE48BFF56, "first": 0x10000000, "end": 0x10000500}


def _field(index, value, only_block=None):
    def mangle(i, fields):
        if only_block is None or i == only_block:
            fields[index] = value
    return mangle


@pytest.mark.parametrize("data, message", [
    (flashkit.uf2(family=0x1C5F21B0), "family id 0x1c5f21b0 \\(esp32\\)"),
    (flashkit.uf2(mangle=_field(0, 0x12345678, 2)), "block 2 is not a UF2 block"),
    (flashkit.uf2(mangle=_field(5, 9, 3)), "block 3 says it is block 9 of 8"),
    (flashkit.uf2(mangle=_field(6, 7)), "says it is block 0 of 7 \\(the file has 8 blocks\\)"),
    (flashkit.uf2(mangle=_field(2, 0)), "has no family id"),
    (flashkit.uf2(mangle=_field(4, 477, 1)), "carries 477 bytes"),
    (flashkit.uf2(base=0x10200000), "outside the 2097152-byte flash"),
    (flashkit.uf2()[:-1], "not a whole number"),
    (b"", "not a whole number"),
])
def test_bad_uf2_is_refused(data, message):
    with pytest.raises(ImageError, match=message):
        images.uf2(data, "fw.uf2", flash_size=2 * 1024 * 1024)


def test_uf2_blocks_not_for_the_main_flash_are_skipped():
    data = flashkit.uf2(blocks=3, mangle=_field(2, 0x2001, 0))
    assert images.uf2(data, "fw.uf2")["first"] == 0x10000100


def test_image_must_end_below_the_file_system():
    board = boards.load("esp32")  # 4 MB flash, the last 2 MB the file system
    esp.fits(board, 0x1000, 0x200000 - 0x1000, "fw.bin")
    with pytest.raises(Refused, match="end at 0x200001, past 0x200000 where board esp32 keeps"):
        esp.fits(board, 0x1000, 0x200000 - 0x1000 + 1, "fw.bin")


def test_board_flash_is_validated(tmp_path):
    b = boards.load("esp32c3")
    b["flash"]["fs_bytes"] = b["flash"]["size_bytes"]
    with pytest.raises(boards.BoardError, match="flash.fs_bytes.*less than flash.size_bytes"):
        boards.validate(b, "x.json")
    b["flash"]["size_bytes"] = "4MB"
    with pytest.raises(boards.BoardError, match="field 'flash.size_bytes': must be a positive"):
        boards.validate(b, "x.json")


def test_firmware_is_found_by_its_release_name(tmp_path):
    board = boards.load("esp32")
    (tmp_path / "ESP32_GENERIC-20251209-v1.27.0.bin").write_bytes(b"x")
    (tmp_path / "ESP32_GENERIC_C3-20251209-v1.27.0.bin").write_bytes(b"x")
    (tmp_path / "ESP32_GENERIC-20250415-v1.25.0.bin").write_bytes(b"x")
    assert firmware.find(board, tmp_path).name == "ESP32_GENERIC-20251209-v1.27.0.bin"
    (tmp_path / "ESP32_GENERIC-20251231-v1.27.0.bin").write_bytes(b"x")
    with pytest.raises(Refused, match="holds 2 images for ESP32_GENERIC"):
        firmware.find(board, tmp_path)
    with pytest.raises(Refused, match="written at 0x1000"):
        firmware.find(board, tmp_path / "empty")
    assert firmware.image_for(boards.load("esp32c3"))["offset"] == 0


def test_chip_labels():
    assert [images.chip_label(c) for c in ("esp32", "esp32c3", "esp32s3", "rp2040")] == [
        "ESP32", "ESP32-C3", "ESP32-S3", "RP2040"]
    assert struct.calcsize("<BBBBHBHH4BB") == 16  # the extended header


def test_the_image_header_says_which_flash_it_is_built_for():
    image = flashkit.esp_image(0, hash_appended=False)  # (the SHA-256 covers the header)
    assert images.esp_image(image)["flash_size"] == 4 << 20  # header byte 3: 0x20
    eight_mb = image[:3] + b"\x30" + image[4:]
    assert images.esp_image(eight_mb)["flash_size"] == 8 << 20
    with pytest.raises(Refused, match="built for 8 MB of flash, board esp32 has 4 MB"):
        esp.flash(boards.load("esp32"), "/dev/null", eight_mb, "fw.bin")


def test_bootsel_drive_is_found_by_its_info_file(tmp_path):
    media = tmp_path / "media"
    (media / "me" / "STICK").mkdir(parents=True)
    with pytest.raises(Refused, match="no BOOTSEL drive"):
        pico.find_drive(roots=(str(media), str(tmp_path / "none")))
    drive = media / "me" / "RPI-RP2"
    drive.mkdir()
    (drive / "INFO_UF2.TXT").write_text("UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\n"
                                         "Board-ID: RPI-RP2\n")
    assert pico.find_drive(roots=(str(media),)) == drive
    assert pico.drive_info(drive)["Model"] == "Raspberry Pi RP2"
    other = media / "me" / "RP2350"
    other.mkdir()
    (other / "INFO_UF2.TXT").write_text("Board-ID: RP2350\n")
    with pytest.raises(Refused, match="2 BOOTSEL drives mounted"):
        pico.find_drive(roots=(str(media),))
    with pytest.raises(Refused, match="another board \\(Board-ID 'RP2350'"):
        pico.drive_info(other)


def test_uf2_must_end_below_the_pico_w_file_system(tmp_path):
    drive = tmp_path / "RPI-RP2"
    drive.mkdir()
    (drive / "INFO_UF2.TXT").write_text("Board-ID: RPI-RP2\n")
    board = boards.load("pico_w")  # 2 MB flash, the last 868,352 bytes the file system
    fs_start = 0x10000000 + 2 * 1024 * 1024 - 868352
    fits = flashkit.uf2(blocks=4, base=fs_start - 4 * 256)
    pico.flash(board, drive, fits, "ok.uf2")
    assert (drive / "ok.uf2").read_bytes() == fits
    with pytest.raises(Refused, match="into the file system board pico_w keeps from 0x1012c000"):
        pico.flash(board, drive, flashkit.uf2(blocks=4, base=fs_start - 3 * 256), "big.uf2")
    assert not (drive / "big.uf2").exists()
