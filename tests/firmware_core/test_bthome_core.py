"""Tests of the BTHome v2 advertisement builder (anju.bthome) on real bytes.

Plain functions and asserts: runs under CPython and MicroPython. The expected
advertisement was computed independently with the `cryptography` package from
the layout in docs/protocol.md section 3.
"""
from binascii import unhexlify

from anju import bthome, ccm

MAC = unhexlify("d4e5f6a1b2c3")
BIND_KEY = unhexlify("814aac74c4f17b6c1581e1ab87816b99")
DOOR_OPEN = bthome.door_sensor_objects(True, False, 87, 2960)
EXPECTED_ADV = unhexlify("0201061516d2fc452f9c6122e72ed3b2eb020100009fe5fb42")


def test_door_sensor_objects_in_ascending_id():
    assert bthome.encode_objects(DOOR_OPEN) == unhexlify("01570c900b11012b00")
    closed = bthome.door_sensor_objects(False, True, 5, 2400)
    assert bthome.encode_objects(closed) == unhexlify("01050c600911002b01")


def test_advertisement_known_answer():
    adv = bthome.advertisement(MAC, BIND_KEY, 258, DOOR_OPEN)
    assert adv == EXPECTED_ADV
    assert len(adv) <= bthome.MAX_ADV_LEN


def test_layout_flags_service_data_counter_and_mic():
    adv = bthome.advertisement(MAC, BIND_KEY, 0x01020304, DOOR_OPEN)
    assert adv[0:3] == b"\x02\x01\x06"
    length = adv[3]
    assert adv[4] == 0x16 and adv[5:7] == b"\xd2\xfc"
    service = adv[7 : 4 + length]
    assert len(adv) == 4 + length
    assert service[0] == 0x45
    assert service[-8:-4] == b"\x04\x03\x02\x01"
    # the ciphertext and MIC open with the bind key and the documented nonce
    nonce = MAC + b"\xd2\xfc\x45" + b"\x04\x03\x02\x01"
    plain = ccm.CCM(BIND_KEY, 4).decrypt(nonce, service[1:-8] + service[-4:])
    assert plain == bthome.encode_objects(DOOR_OPEN)


def test_counter_changes_ciphertext_and_nonce():
    a = bthome.advertisement(MAC, BIND_KEY, 1, DOOR_OPEN)
    b = bthome.advertisement(MAC, BIND_KEY, 2, DOOR_OPEN)
    assert a[8:-8] != b[8:-8]
    assert bthome.nonce(MAC, 2) == MAC + b"\xd2\xfc\x45\x02\x00\x00\x00"


def test_name_included_when_it_fits_and_dropped_when_not():
    short = bthome.advertisement(MAC, BIND_KEY, 258, DOOR_OPEN, name="d101")
    assert short == EXPECTED_ADV + b"\x05\x09d101"
    assert len(short) == 31
    long_name = bthome.advertisement(MAC, BIND_KEY, 258, DOOR_OPEN, name="anju-door-101")
    assert long_name == EXPECTED_ADV
    # one object leaves room for 11 name bytes, not for 13
    few = bthome.advertisement(MAC, BIND_KEY, 7, [bthome.opening(False)], name="door-101")
    assert few.endswith(b"\x09\x09door-101")
    assert len(few) == 28
    assert len(bthome.advertisement(MAC, BIND_KEY, 7, [bthome.opening(False)], name="anju-door-101")) == 18


def test_rejects_what_the_protocol_cannot_carry():
    cases = (
        lambda: bthome.advertisement(MAC, BIND_KEY, 1, [bthome.opening(True), bthome.battery(50)]),
        lambda: bthome.advertisement(MAC, BIND_KEY, -1, DOOR_OPEN),
        lambda: bthome.advertisement(MAC, BIND_KEY, 1 << 32, DOOR_OPEN),
        lambda: bthome.advertisement(MAC[:5], BIND_KEY, 1, DOOR_OPEN),
        lambda: bthome.advertisement(MAC, BIND_KEY[:15], 1, DOOR_OPEN),
        lambda: bthome.advertisement(MAC, BIND_KEY, 1, [(0x01, bytes(20))]),
        lambda: bthome.battery(101),
        lambda: bthome.voltage(70000),
    )
    for i, case in enumerate(cases):
        try:
            case()
        except ValueError:
            pass
        else:
            assert False, "case %d was accepted" % i


def test_reused_cipher_gives_the_same_bytes():
    cipher = ccm.CCM(BIND_KEY, bthome.MIC_LEN)
    first = bthome.advertisement(MAC, BIND_KEY, 258, DOOR_OPEN, cipher=cipher)
    second = bthome.advertisement(MAC, BIND_KEY, 258, DOOR_OPEN, cipher=cipher)
    assert first == second == EXPECTED_ADV
