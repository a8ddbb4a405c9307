"""The firmware's BTHome v2 advertisements decode with the `bthome-ble` library.

Builds advertisements with `firmware/anju/bthome.py` and feeds them to
`BTHomeBluetoothDeviceData` directly, checking values and the flags the hub
relies on. Also pins the library behaviours `hub.ble` works around (replay
skip with stale flags, crash on empty service data), so an upgrade that
changes them fails here first.
"""
from __future__ import annotations

import pytest
from bleak.backends.device import BLEDevice
from bthome_ble import BTHomeBluetoothDeviceData
from bthome_ble.parser import EncryptionScheme
from habluetooth import BluetoothServiceInfoBleak

from anju import bthome

ADDRESS = "D4:E5:F6:A1:B2:C3"
MAC = bytes.fromhex(ADDRESS.replace(":", ""))
BIND_KEY = bytes.fromhex("814aac74c4f17b6c1581e1ab87816b99")
UUID = "0000fcd2-0000-1000-8000-00805f9b34fb"


def service_data(counter: int, is_open: bool = True, tamper: bool = False,
                 battery: int = 87, millivolts: int = 2960) -> bytes:
    adv = bthome.advertisement(
        MAC, BIND_KEY, counter, bthome.door_sensor_objects(is_open, tamper, battery, millivolts)
    )
    assert adv[4:7] == b"\x16\xd2\xfc"
    return adv[7 : 4 + adv[3]]


def info(data: bytes, time: float = 1000.0) -> BluetoothServiceInfoBleak:
    return BluetoothServiceInfoBleak(
        name=ADDRESS, address=ADDRESS, rssi=-60, manufacturer_data={},
        service_data={UUID: data}, service_uuids=[], source="test",
        device=BLEDevice(ADDRESS, None, None), advertisement=None,
        connectable=False, time=time, tx_power=None,
    )


def values(update) -> dict:
    out = {k.key: v.native_value for k, v in update.entity_values.items()}
    out.update({k.key: v.native_value for k, v in update.binary_entity_values.items()})
    return out


def decrypted(parser: BTHomeBluetoothDeviceData) -> bool:
    return (
        parser.encryption_scheme is EncryptionScheme.BTHOME_BINDKEY
        and parser.bindkey_verified
        and not parser.decryption_failed
    )


@pytest.mark.parametrize(
    ("is_open", "tamper", "battery", "millivolts"),
    [(True, False, 87, 2960), (False, False, 100, 3300), (False, True, 0, 0), (True, True, 5, 65535)],
)
def test_door_sensor_values_decode(is_open, tamper, battery, millivolts):
    parser = BTHomeBluetoothDeviceData(BIND_KEY)
    update = parser.update(info(service_data(258, is_open, tamper, battery, millivolts)))
    assert decrypted(parser)
    got = values(update)
    assert got["opening"] is is_open
    assert got["tamper"] is tamper
    assert got["battery"] == battery
    assert round(got["voltage"] * 1000) == millivolts
    assert parser.sleepy_device  # device_info bit 2: trigger-based


def test_wrong_key_is_reported_by_flags_not_exceptions():
    parser = BTHomeBluetoothDeviceData(bytes(range(16)))
    update = parser.update(info(service_data(258)))
    assert parser.encryption_scheme is EncryptionScheme.BTHOME_BINDKEY
    assert parser.decryption_failed and not parser.bindkey_verified
    assert "opening" not in values(update)


def test_every_tampered_byte_is_refused():
    good = service_data(258)
    for index in range(len(good)):
        for bit in (0x01, 0x80):
            forged = bytearray(good)
            forged[index] ^= bit
            parser = BTHomeBluetoothDeviceData(BIND_KEY)
            update = parser.update(info(bytes(forged)))
            assert not decrypted(parser), (index, bit)
            assert "opening" not in values(update), (index, bit)


@pytest.mark.parametrize("length", range(1, 18))
def test_truncated_service_data_is_refused(length):
    parser = BTHomeBluetoothDeviceData(BIND_KEY)
    update = parser.update(info(service_data(258)[:length]))
    assert not decrypted(parser)
    assert "opening" not in values(update)


def test_empty_service_data_crashes_the_library():
    # why hub.ble checks the layout before calling update()
    with pytest.raises(IndexError):
        BTHomeBluetoothDeviceData(BIND_KEY).update(info(b""))


def test_unencrypted_frame_with_bind_key_is_a_downgrade():
    plain = bytes([0x44]) + bthome.encode_objects(bthome.door_sensor_objects(True, False, 87, 2960))
    parser = BTHomeBluetoothDeviceData(BIND_KEY)
    update = parser.update(info(plain))
    assert parser.encryption_scheme is EncryptionScheme.NONE
    assert parser.downgrade_detected
    assert "opening" not in values(update)


def test_library_replay_skip_leaves_success_flags_and_old_values():
    """bthome-ble skips a lower counter (>= 100) silently: flags and values look fresh."""
    parser = BTHomeBluetoothDeviceData(BIND_KEY)
    parser.update(info(service_data(500, is_open=True)))
    replay = info(service_data(400, is_open=False), time=1001.0)
    update = parser.update(replay)
    assert decrypted(parser)
    assert parser.last_service_info is replay
    assert values(update)["opening"] is True  # the value of counter 500, not 400
    # with its counter reset first, the library decrypts the older frame
    parser.reset_encryption_counter()
    parser.decryption_failed = True
    update = parser.update(info(service_data(400, is_open=False), time=1002.0))
    assert decrypted(parser)
    assert values(update)["opening"] is False


def test_library_skips_an_identical_frame_after_four_seconds():
    parser = BTHomeBluetoothDeviceData(BIND_KEY)
    data = service_data(700)
    first = info(data, time=1000.0)
    parser.update(first)
    parser.decryption_failed = True
    parser.update(info(data, time=1005.0))
    assert parser.last_service_info is first
    assert parser.decryption_failed  # skipped: nothing was decrypted
