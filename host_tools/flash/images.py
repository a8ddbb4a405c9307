"""Image checks, done before a board is written: pure functions over bytes.

ESP image (what esptool's image parser reads; the first image of a MicroPython
`.bin` is its second-stage bootloader):

    u8 magic 0xE9, u8 segments, u8 flash mode, u8 flash size (high nibble:
        0 1 MB, 1 2 MB, 2 4 MB, ... 7 128 MB) and frequency (low), u32 entry
    extended header (16): u8 wp pin, 3 x u8 SPI drive, u16 chip id, u8 min rev,
        u16 min rev full, u16 max rev full, 4 reserved, u8 hash appended (0/1)
    segments: u32 load address, u32 length, data
    padding to 16 bytes, the last byte the XOR checksum (seed 0xEF) of all
    segment data; then the SHA-256 of everything before it if hash appended.

UF2 (Microsoft's format, what the RP2040's BOOTSEL drive takes): 512-byte
blocks of u32 magic 0x0A324655, magic 0x9E5D5157, flags, target address,
payload size, block number, number of blocks, family id (flag 0x2000), 476
bytes of data, u32 end magic 0x0AB16F30.
"""
import hashlib
import struct

from host_tools.flash import ImageError

ESP_MAGIC = 0xE9
CHECKSUM_SEED = 0xEF
MAX_SEGMENTS = 16
# image chip ids (esptool's IMAGE_CHIP_ID) -> chip names as boards/*.json spell them
ESP_CHIP_IDS = {0: "esp32", 2: "esp32s2", 5: "esp32c3", 9: "esp32s3", 12: "esp32c2",
                13: "esp32c6", 16: "esp32h2", 18: "esp32p4"}

UF2_MAGIC0 = 0x0A324655
UF2_MAGIC1 = 0x9E5D5157
UF2_MAGIC_END = 0x0AB16F30
UF2_FLAG_NOT_MAIN_FLASH = 0x00000001
UF2_FLAG_FAMILY = 0x00002000
UF2_BLOCK = 512
UF2_FAMILIES = {0xE48BFF56: "rp2040", 0xE48BFF59: "rp2350-arm-s", 0xE48BFF5A: "rp2350-riscv",
                0x1C5F21B0: "esp32", 0xD42BA06C: "esp32c3", 0xADA52840: "nrf52840"}
RP2040_FAMILY = 0xE48BFF56
RP2040_FLASH = 0x10000000


def chip_label(name):
    """esp32c3 -> ESP32-C3."""
    label = name.upper()
    return label[:5] + "-" + label[5:] if len(label) > 5 and label.startswith("ESP32") else label


def esp_image(data, where="image"):
    """Parse the first ESP image in `data`; returns
    {"chip": name or None, "chip_id", "segments", "length", "hash_appended"}.
    Raises ImageError naming `where` and what is wrong."""
    if len(data) < 24:
        raise ImageError("%s: %d bytes is too short for an ESP image" % (where, len(data)))
    if data[0] != ESP_MAGIC:
        raise ImageError("%s: not an ESP image (first byte 0x%02x, an ESP image starts with 0xE9)"
                         % (where, data[0]))
    segments = data[1]
    if not 0 < segments <= MAX_SEGMENTS:
        raise ImageError("%s: %d segments (an ESP image has 1..%d)" % (where, segments, MAX_SEGMENTS))
    ext = struct.unpack("<BBBBHBHH4BB", data[8:24])
    chip_id, hash_appended = ext[4], ext[-1]
    if hash_appended not in (0, 1):
        raise ImageError("%s: extended header's hash flag is 0x%02x (0 or 1)" % (where, hash_appended))
    pos = 24
    state = CHECKSUM_SEED
    for n in range(segments):
        if pos + 8 > len(data):
            raise ImageError("%s: truncated in the header of segment %d" % (where, n))
        _addr, size = struct.unpack("<II", data[pos:pos + 8])
        pos += 8
        if pos + size > len(data):
            raise ImageError("%s: segment %d (%d bytes) runs past the end of the file"
                             % (where, n, size))
        for b in data[pos:pos + size]:
            state ^= b
        pos += size
    pos = (pos // 16) * 16 + 15  # the checksum is the last byte of the 16-byte padding
    if pos >= len(data):
        raise ImageError("%s: truncated before its checksum" % where)
    if data[pos] != state:
        raise ImageError("%s: checksum 0x%02x does not match its data (0x%02x)"
                         % (where, data[pos], state))
    pos += 1
    if hash_appended:
        if pos + 32 > len(data):
            raise ImageError("%s: truncated before its SHA-256" % where)
        if hashlib.sha256(data[:pos]).digest() != bytes(data[pos:pos + 32]):
            raise ImageError("%s: SHA-256 does not match its contents" % where)
        pos += 32
    size_code = data[3] >> 4
    return {"chip": ESP_CHIP_IDS.get(chip_id), "chip_id": chip_id, "segments": segments,
            "length": pos, "hash_appended": bool(hash_appended),
            "flash_size": (1 << 20) << size_code if size_code <= 7 else None}


def check_esp_image_for(data, mcu, where="image"):
    """The image must be an ESP image built for `mcu` (esp32, esp32c3)."""
    info = esp_image(data, where)
    if info["chip"] != mcu:
        built_for = (chip_label(info["chip"]) if info["chip"]
                     else "an unknown chip (image chip id %d)" % info["chip_id"])
        raise ImageError("%s is an image for %s, not for %s (image chip id %d, %s needs %d)"
                         % (where, built_for, chip_label(mcu), info["chip_id"],
                            chip_label(mcu), _chip_id(mcu)))
    return info


def _chip_id(mcu):
    return {v: k for k, v in ESP_CHIP_IDS.items()}[mcu]


def uf2(data, where="image", family=RP2040_FAMILY, flash_size=None):
    """Check a UF2 file block by block; returns {"blocks", "family", "first", "end"}
    (the flash address range it writes). Refuses another family, a block out of
    order, a count that disagrees, a payload past `flash_size`."""
    if not data or len(data) % UF2_BLOCK:
        raise ImageError("%s: %d bytes is not a whole number of 512-byte UF2 blocks"
                         % (where, len(data)))
    count = len(data) // UF2_BLOCK
    first = end = None
    for i in range(count):
        block = data[i * UF2_BLOCK:(i + 1) * UF2_BLOCK]
        m0, m1, flags, addr, size, number, total, fam = struct.unpack("<8I", block[:32])
        (m_end,) = struct.unpack("<I", block[508:512])
        if (m0, m1, m_end) != (UF2_MAGIC0, UF2_MAGIC1, UF2_MAGIC_END):
            raise ImageError("%s: block %d is not a UF2 block (magic numbers %08x %08x %08x)"
                             % (where, i, m0, m1, m_end))
        if flags & UF2_FLAG_NOT_MAIN_FLASH:
            continue
        if not flags & UF2_FLAG_FAMILY:
            raise ImageError("%s: block %d has no family id (an RP2040 UF2 carries 0x%08x)"
                             % (where, i, family))
        if fam != family:
            raise ImageError("%s: family id 0x%08x (%s), the board needs 0x%08x (%s)"
                             % (where, fam, UF2_FAMILIES.get(fam, "unknown"), family,
                                UF2_FAMILIES.get(family, "?")))
        if number != i or total != count:
            raise ImageError("%s: block %d says it is block %d of %d (the file has %d blocks)"
                             % (where, i, number, total, count))
        if size > 476:
            raise ImageError("%s: block %d carries %d bytes (476 at most)" % (where, i, size))
        if flash_size is not None and not (RP2040_FLASH <= addr and addr + size <= RP2040_FLASH + flash_size):
            raise ImageError("%s: block %d writes 0x%08x..0x%08x, outside the %d-byte flash at 0x%08x"
                             % (where, i, addr, addr + size, flash_size, RP2040_FLASH))
        first = addr if first is None else min(first, addr)
        end = addr + size if end is None else max(end, addr + size)
    if first is None:
        raise ImageError("%s: no block writes the main flash" % where)
    return {"blocks": count, "family": family, "first": first, "end": end}
