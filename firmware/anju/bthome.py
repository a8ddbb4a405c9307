"""BTHome v2 encrypted advertisements (docs/protocol.md section 3).

Builds the legacy advertising data a battery sensor broadcasts: the Flags
structure, the BTHome service data (UUID16 0xFCD2) with the AES-CCM encrypted
objects, the counter and the 4-byte MIC, and the complete local name when it
still fits in 31 bytes. Also encodes the door sensor's objects.

Pure: no `bluetooth` or `machine` imports; the shell hands the bytes to the
radio. It never chooses or stores the counter (the caller owns replay
protection and must never reuse a value) and never logs the bind key.
Errors are `ValueError` for inputs the protocol cannot carry.
"""
import struct

from anju import ccm

UUID16 = 0xFCD2
# bit 0 encrypted, bit 2 trigger-based (sleepy device), bits 5-7 version 2
DEVICE_INFO = 0x45
MAX_ADV_LEN = 31
MIC_LEN = 4

AD_FLAGS = 0x01
AD_COMPLETE_NAME = 0x09
AD_SERVICE_DATA_16 = 0x16
# LE General Discoverable, BR/EDR not supported
FLAGS_VALUE = 0x06

OBJ_BATTERY = 0x01
OBJ_VOLTAGE = 0x0C
OBJ_OPENING = 0x11
OBJ_TAMPER = 0x2B

_FLAGS_AD = bytes((2, AD_FLAGS, FLAGS_VALUE))
_UUID_LE = bytes((UUID16 & 0xFF, UUID16 >> 8))


def battery(percent):
    if percent < 0 or percent > 100:
        raise ValueError("battery percent out of range")
    return (OBJ_BATTERY, bytes((percent,)))


def voltage(millivolts):
    if millivolts < 0 or millivolts > 0xFFFF:
        raise ValueError("voltage out of range")
    return (OBJ_VOLTAGE, struct.pack("<H", millivolts))


def opening(is_open):
    return (OBJ_OPENING, b"\x01" if is_open else b"\x00")


def tamper(case_opened):
    return (OBJ_TAMPER, b"\x01" if case_opened else b"\x00")


def door_sensor_objects(is_open, case_opened, battery_percent, millivolts):
    """The door sensor's objects, in ascending object id."""
    return [battery(battery_percent), voltage(millivolts), opening(is_open), tamper(case_opened)]


def encode_objects(objects):
    """Concatenate (object_id, value_bytes) pairs; ids must ascend."""
    out = bytearray()
    last = -1
    for object_id, value in objects:
        if object_id < last:
            raise ValueError("BTHome objects must be in ascending object id")
        last = object_id
        out.append(object_id)
        out.extend(value)
    return bytes(out)


def nonce(mac, counter):
    """MAC (6 bytes, printed order) + UUID16 (LE) + device info + counter (LE)."""
    if len(mac) != 6:
        raise ValueError("MAC must be 6 bytes")
    return bytes(mac) + _UUID_LE + bytes((DEVICE_INFO,)) + struct.pack("<I", counter)


def service_data(mac, bind_key, counter, objects, cipher=None):
    """The BTHome service data after the UUID: device info, ciphertext, counter, MIC.

    `cipher` may be a `ccm.CCM(bind_key, 4)` kept by the caller to avoid
    expanding the key on every advertisement.
    """
    if counter < 0 or counter > 0xFFFFFFFF:
        raise ValueError("counter must be an unsigned 32-bit value")
    if cipher is None:
        cipher = ccm.CCM(bind_key, MIC_LEN)
    sealed = cipher.encrypt(nonce(mac, counter), encode_objects(objects))
    n = len(sealed) - MIC_LEN
    return bytes((DEVICE_INFO,)) + sealed[:n] + struct.pack("<I", counter) + sealed[n:]


def advertisement(mac, bind_key, counter, objects, name=None, cipher=None):
    """Full legacy advertising data (at most 31 bytes).

    The name is left out when it does not fit; the service data must fit.
    """
    body = service_data(mac, bind_key, counter, objects, cipher)
    adv = bytearray(_FLAGS_AD)
    adv.append(len(body) + 3)
    adv.append(AD_SERVICE_DATA_16)
    adv.extend(_UUID_LE)
    adv.extend(body)
    if len(adv) > MAX_ADV_LEN:
        raise ValueError("BTHome objects do not fit in a legacy advertisement")
    if name:
        encoded = name.encode() if isinstance(name, str) else bytes(name)
        if len(adv) + 2 + len(encoded) <= MAX_ADV_LEN:
            adv.append(len(encoded) + 1)
            adv.append(AD_COMPLETE_NAME)
            adv.extend(encoded)
    return bytes(adv)
