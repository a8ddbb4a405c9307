"""Images for the flashing tests, made here: a minimal ESP image that esptool's
own parser accepts, and UF2 files."""
import hashlib
import os
import struct

ESP32 = 0
ESP32C3 = 5


def esp_image(chip_id, payload=b"", segments=2, hash_appended=True, pad_to=None):
    """An ESP image: header, extended header naming the chip, `segments` RAM
    segments (the first carrying `payload`), the checksum, the SHA-256."""
    body = b""
    state = 0xEF
    seg_data = [payload or os.urandom(1000)] + [os.urandom(256 + 4 * i) for i in range(1, segments)]
    for i, data in enumerate(seg_data):
        data = data + b"\0" * (-len(data) % 4)
        body += struct.pack("<II", 0x3FFB0000 + 0x1000 * i, len(data)) + data
        for b in data:
            state ^= b
    header = struct.pack("<BBBBI", 0xE9, segments, 2, 0x20, 0x40080000)
    ext = struct.pack("<BBBBHBHH4BB", 0xEE, 0, 0, 0, chip_id, 0, 0, 0xFFFF, 0, 0, 0, 0,
                      1 if hash_appended else 0)
    image = header + ext + body
    image += b"\0" * (15 - len(image) % 16) + bytes([state])
    if hash_appended:
        image += hashlib.sha256(image).digest()
    if pad_to:
        image += b"\xff" * (pad_to - len(image))
    return image


def uf2(blocks=8, family=0xE48BFF56, base=0x10000000, mangle=None):
    """A UF2 of `blocks` 256-byte payloads; `mangle(index, fields)` may change a
    block's header fields (a list: magic0, magic1, flags, addr, size, number,
    total, family) before it is packed."""
    out = b""
    for i in range(blocks):
        fields = [0x0A324655, 0x9E5D5157, 0x2000, base + 256 * i, 256, i, blocks, family]
        if mangle:
            mangle(i, fields)
        data = os.urandom(256).ljust(476, b"\0")
        out += struct.pack("<8I", *fields) + data + struct.pack("<I", 0x0AB16F30)
    return out
