"""Device frames (anju.frame, docs/protocol.md section 1): HMAC known answers,
round trips for every message type and every rejection reason.

Plain functions and asserts so the same file runs under CPython (pytest) and
under MicroPython (unix-port harness). Bad frames are built by hand and
signed with `frame.tag`, so a rejection is caused by the defect under test and
not by a wrong tag.
"""
import struct
from binascii import hexlify, unhexlify

from anju import frame

KEY = bytes(range(32))
DEV = b"door-101"


def h(s):
    return unhexlify(s.replace(" ", ""))


def signed(header_and_body, key=KEY, dev=DEV):
    """A frame with a valid tag over arbitrary header and body bytes."""
    data = bytes(header_and_body)
    return data + frame.tag(key, dev, data)


def raw_header(mtype, counter, device_time, n, version=frame.VERSION):
    return struct.pack(">BBIIB", version, mtype, counter, device_time, n)


def reason_of(fn, *args):
    """The FrameError reason `fn(*args)` raises; fails when it accepts."""
    try:
        fn(*args)
    except frame.FrameError as exc:
        return exc.reason
    raise AssertionError("accepted %r" % (args[-1],))


def rejects(data):
    """verify's reason for `data` from DEV under KEY."""
    return reason_of(frame.verify, KEY, DEV, data)


def good(mtype=frame.T_DOOR, body=b"\x01", counter=7, device_time=1000):
    return frame.encode(KEY, DEV, mtype, counter, device_time, body)


# ---- HMAC-SHA256 ----------------------------------------------------------------

def test_hmac_rfc4231_case_1():
    mac = frame.hmac_sha256(b"\x0b" * 20, b"Hi There")
    assert hexlify(mac) == b"b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"


def test_hmac_rfc4231_case_2():
    mac = frame.hmac_sha256(b"Jefe", b"what do ya want for nothing?")
    assert hexlify(mac) == b"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def test_hmac_rfc4231_case_6_key_longer_than_block_is_hashed_first():
    mac = frame.hmac_sha256(b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First")
    assert hexlify(mac) == b"60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"


def test_hmac_parts_are_concatenated():
    whole = frame.hmac_sha256(b"Jefe", b"what do ya want for nothing?")
    assert frame.hmac_sha256(b"Jefe", b"what do ", b"", b"ya want for nothing?") == whole
    assert frame.hmac_sha256(b"Jefe", b"what do ya want for nothing") != whole


def test_tag_is_hmac_of_device_id_zero_and_signed_bytes_truncated_to_16():
    data = raw_header(frame.T_DOOR, 1, 0, 1) + b"\x00"
    t = frame.tag(KEY, DEV, data)
    assert len(t) == 16
    assert t == frame.hmac_sha256(KEY, DEV + b"\x00" + data)[:16]
    assert t != frame.hmac_sha256(KEY, DEV + data)[:16]


# ---- encode / verify -------------------------------------------------------------

def test_round_trip_every_message_type():
    cases = (
        (frame.T_BOOT, frame.boot_body(4, 0, 1)),
        (frame.T_DOOR, frame.door_body(True)),
        (frame.T_DOOR, frame.door_body(False)),
        (frame.T_TAMPER, b"\x01"),
        (frame.T_BATTERY, frame.battery_body(87, 2950)),
        (frame.T_HEARTBEAT, frame.heartbeat_body(frame.HB_OPEN | frame.HB_BATTERY_LOW, 15, 2310, 3)),
    )
    assert sorted(set(t for t, _ in cases)) == sorted(frame.BODY_LEN)
    counter = 1
    for mtype, body in cases:
        data = frame.encode(KEY, DEV, mtype, counter, 789456123, body)
        assert len(data) == frame.HEADER_LEN + len(body) + frame.TAG_LEN
        assert data[0] == 0xA1 and data[1] == mtype
        assert struct.unpack(">I", data[2:6])[0] == counter
        assert struct.unpack(">I", data[6:10])[0] == 789456123
        assert data[10] == len(body)
        assert frame.verify(KEY, DEV, data) == (mtype, counter, 789456123, body)
        assert frame.header(data) == (mtype, counter, 789456123, body)
        counter += 1


def test_encode_known_layout():
    data = frame.encode(KEY, DEV, frame.T_BATTERY, 0x01020304, 0x0A0B0C0D, frame.battery_body(50, 0x0ABC))
    assert data[:14] == h("a1 12 01020304 0a0b0c0d 03 32 0abc")
    assert data[14:] == frame.tag(KEY, DEV, data[:14])


def test_body_helpers():
    assert frame.door_body(1) == b"\x01" and frame.door_body(0) == b"\x00"
    assert frame.boot_body(1, 2, 3) == b"\x01\x02\x03"
    assert frame.battery_body(100, 3000) == b"\x64\x0b\xb8"
    assert frame.heartbeat_body(7, 9, 2200, 5) == b"\x07\x09\x08\x98\x00\x05"
    # the queue length saturates instead of wrapping
    assert frame.heartbeat_body(0, 0, 0, 70000)[4:] == b"\xff\xff"


def test_device_time_is_truncated_to_32_bits():
    data = frame.encode(KEY, DEV, frame.T_DOOR, 1, 0x1FFFFFFFF, b"\x00")
    assert frame.verify(KEY, DEV, data)[2] == 0xFFFFFFFF


def test_counter_bounds_accepted():
    for counter in (1, 0xFFFFFFFF):
        data = frame.encode(KEY, DEV, frame.T_DOOR, counter, 0, b"\x00")
        assert frame.verify(KEY, DEV, data)[1] == counter


def test_max_body_accepted_by_header():
    data = frame.encode(KEY, DEV, 0x7E, 5, 0, bytes(64))
    assert len(data) == frame.MAX_LEN == 91
    assert frame.header(data) == (0x7E, 5, 0, bytes(64))


def test_tag_is_bound_to_device_id():
    data = good()
    assert rejects_as_other_device(data, b"door-102") == "bad_tag"
    assert rejects_as_other_device(data, b"door-10") == "bad_tag"
    assert rejects_as_other_device(data, b"door-1010") == "bad_tag"


def rejects_as_other_device(data, other):
    return reason_of(frame.verify, KEY, other, data)


def test_tag_is_bound_to_key():
    data = good()
    other = bytes(31) + b"\x01"
    assert reason_of(frame.verify, other, DEV, data) == "bad_tag"


def test_encode_refuses_bad_arguments():
    for counter, body in ((0, b"\x00"), (-1, b"\x00"), (0x100000000, b"\x00"), (1, bytes(65))):
        try:
            frame.encode(KEY, DEV, frame.T_DOOR, counter, 0, body)
        except ValueError:
            pass
        else:
            raise AssertionError("encoded counter %d with %d body bytes" % (counter, len(body)))


# ---- rejections -----------------------------------------------------------------

def test_truncated_shorter_than_minimum():
    data = good()
    for size in (0, 1, 11, 26):
        assert rejects(data[:size]) == "truncated", size
        assert reason_of(frame.header, data[:size]) == "truncated"
    # one byte short of a complete frame is also truncated
    assert rejects(data[:-1]) == "truncated"


def test_truncated_length_field_bigger_than_data():
    # length byte says 5, only one body byte follows, but the total still >= 27
    data = signed(raw_header(frame.T_DOOR, 3, 0, 5) + b"\x01") + b"\x00"
    assert len(data) >= frame.MIN_LEN
    assert rejects(data) == "truncated"
    assert reason_of(frame.header, data) == "truncated"


def test_trailing_bytes_are_not_accepted():
    data = good() + b"\x00"
    assert rejects(data) == "truncated"


def test_oversized_total():
    data = good(body=bytes(3), mtype=frame.T_BOOT) + bytes(70)
    assert len(data) > 91
    assert rejects(data) == "oversized"
    assert reason_of(frame.header, bytes(92)) == "oversized"


def test_oversized_length_byte():
    for n in (65, 200, 255):
        data = signed(raw_header(frame.T_DOOR, 3, 0, n) + b"\x01")
        assert rejects(data) == "oversized", n


def test_bad_version():
    for version in (0x00, 0xA0, 0xA2, 0xFF):
        data = signed(raw_header(frame.T_DOOR, 3, 0, 1, version=version) + b"\x01")
        assert rejects(data) == "bad_version", version
        assert reason_of(frame.header, data) == "bad_version"


def test_bad_tag_byte_flip_in_header_body_and_tag():
    data = good(frame.T_HEARTBEAT, frame.heartbeat_body(0, 50, 2600, 0))
    # type, counter, device time, body, first and last tag byte
    for pos in (1, 2, 5, 9, 11, 16, len(data) - 16, len(data) - 1):
        bad = bytearray(data)
        bad[pos] ^= 0x01
        assert rejects(bytes(bad)) == "bad_tag", pos


def test_unknown_type():
    for mtype in (0x00, 0x02, 0x14, 0xFF):
        data = signed(raw_header(mtype, 3, 0, 1) + b"\x01")
        assert rejects(data) == "unknown_type", mtype
        # header does not judge the type
        assert frame.header(data)[0] == mtype


def test_bad_body_wrong_length_for_every_type():
    for mtype, n in frame.BODY_LEN.items():
        for wrong in (0, n - 1, n + 1):
            if wrong < 0 or wrong == n:
                continue
            data = signed(raw_header(mtype, 3, 0, wrong) + bytes(wrong))
            assert rejects(data) == "bad_body", (mtype, wrong)


def test_bad_body_counter_zero():
    data = signed(raw_header(frame.T_DOOR, 0, 0, 1) + b"\x01")
    assert rejects(data) == "bad_body"


def test_forged_tag_is_bad_tag_even_with_unknown_type():
    # the tag is checked before the type: no information about valid types leaks
    data = raw_header(0x55, 3, 0, 1) + b"\x01" + bytes(16)
    assert rejects(data) == "bad_tag"


def test_frame_error_is_a_value_error_with_reason():
    try:
        frame.verify(KEY, DEV, b"")
    except ValueError as exc:
        assert isinstance(exc, frame.FrameError)
        assert exc.reason == "truncated"
    else:
        raise AssertionError("empty frame accepted")


def test_verify_accepts_bytearray_and_memoryview():
    data = good()
    assert frame.verify(KEY, DEV, bytearray(data)) == frame.verify(KEY, DEV, data)
    assert frame.verify(KEY, DEV, memoryview(data))[3] == b"\x01"


# ---- constant-time comparison ------------------------------------------------------

def test_equal_ct():
    assert frame.equal_ct(b"", b"")
    assert frame.equal_ct(b"abc", b"abc")
    assert frame.equal_ct(b"abc", bytearray(b"abc"))
    assert not frame.equal_ct(b"abc", b"abd")
    assert not frame.equal_ct(b"abc", b"bbc")
    assert not frame.equal_ct(b"abc", b"ab")
    assert not frame.equal_ct(b"ab", b"abc")
    assert not frame.equal_ct(b"\x00", b"\x80")
