"""Bad frames for scenarios and tests: forged, replayed, tampered, truncated,
oversized, from an unknown device, or signed with the wrong key.

Built from real frames the device sent (replayed, tampered, truncated) or from
the documented layout (docs/protocol.md), so the hub is tested against the
bytes an attacker could actually put on the broker or the air.
"""
import hashlib
import hmac
import os
import struct

VERSION = 0xA1
UNKNOWN_DEVICE = "intruder-1"  # a device id the site does not list


def sign(key, device_id, header_body):
    return hmac.new(key, device_id.encode() + b"\x00" + header_body, hashlib.sha256).digest()[:16]


def make_frame(key, device_id, mtype, counter, body, device_time=0):
    hb = struct.pack(">BBIIB", VERSION, mtype, counter, device_time, len(body)) + body
    return hb + sign(key, device_id, hb)


def bad_frame(kind, site_id, dev, sent):
    """(topic, payload) of a bad frame of `kind` for device `dev`."""
    topic = "anju/%s/%s/event" % (site_id, dev.id)
    last = sent[-1] if sent else make_frame(dev.frame_key, dev.id, 0x10, 1, b"\x01")
    if kind == "forged":
        # a door-open frame with a fresh counter and a tag made up by the attacker
        hb = struct.pack(">BBIIB", VERSION, 0x10, 0x7FFFFFF0, 0, 1) + b"\x01"
        return topic, hb + os.urandom(16)
    if kind == "wrong_key":
        return topic, make_frame(os.urandom(32), dev.id, 0x10, 0x7FFFFFF1, b"\x01")
    if kind == "replayed":
        if len(sent) < 2:
            raise ValueError("replaying needs two earlier frames from %s" % dev.id)
        return topic, sent[0]
    if kind == "tampered":
        data = bytearray(last)
        data[11] ^= 0x01  # flip the first body bit (open <-> closed)
        return topic, bytes(data)
    if kind == "truncated":
        return topic, last[:-5]
    if kind == "oversized":
        return topic, last + bytes(200)
    if kind == "unknown_device":
        return "anju/%s/%s/event" % (site_id, UNKNOWN_DEVICE), make_frame(
            os.urandom(32), UNKNOWN_DEVICE, 0x10, 1, b"\x01")
    raise ValueError("unknown kind of bad frame: %s" % kind)


def bad_advertisement(kind, dev, sent):
    """Raw advertising data of a bad BTHome advertisement."""
    from simulator import bthome_tx
    if kind == "truncated":
        return bytes.fromhex("020106") + bytes.fromhex("0616d2fc45")
    if kind in ("forged", "wrong_key", "unknown_device"):
        key = os.urandom(16)
        return bthome_tx.door_advertisement(dev.ble_address, key, 0x7FFFFFF0, True, False, 90, 2950)
    if kind == "tampered":
        adv = bytearray(bthome_tx.door_advertisement(dev.ble_address, dev.bind_key, 0x7FFFFFF2,
                                                     True, False, 90, 2950))
        adv[9] ^= 0x01
        return bytes(adv)
    raise ValueError("bad advertisement of kind '%s' is not supported" % kind)
