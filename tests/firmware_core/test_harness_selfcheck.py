"""Known answers for the MicroPython built-ins the firmware core relies on.

Runs under CPython (pytest) and under MicroPython (test_on_micropython), so a
difference between the two interpreters shows up here first. Like every core
test: plain functions, plain asserts, no pytest imports, no fixtures.
"""

import binascii
import hashlib
import struct

# CPython raises struct.error, MicroPython ValueError (and has no struct.error).
STRUCT_ERROR = getattr(struct, "error", ValueError)


def test_struct_little_endian_layout():
    packed = struct.pack("<BHI", 0x40, 0x1234, 0xDEADBEEF)
    assert packed == b"\x40\x34\x12\xef\xbe\xad\xde", packed
    assert struct.unpack("<BHI", packed) == (0x40, 0x1234, 0xDEADBEEF)
    assert struct.calcsize("<BHI") == 7


def test_sha256_known_answer():
    digest = hashlib.sha256(b"abc").digest()
    assert binascii.hexlify(digest) == b"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_expected_exception_without_pytest():
    try:
        struct.unpack("<I", b"\x00\x01")
    except STRUCT_ERROR:
        pass
    else:
        raise AssertionError("short buffer was accepted")


def test_big_integer_counter_arithmetic():
    counter = 0xFFFFFFFF
    assert (counter + 1) & 0xFFFFFFFF == 0
    assert (counter + 1).to_bytes(5, "little") == b"\x00\x00\x00\x00\x01"

