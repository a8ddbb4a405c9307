"""The OTA exchange between a device and its hub over MQTT, pure (docs/ota.md,
"Offer and transfer").

Device -> hub, on `anju/<site>/<device>/ota/up`: authenticated frames
(anju.frame, the device's key and counter) of two types:

    FW_REPORT  0x02  what the device runs and what its update is doing
    CHUNK_REQ  0x03  "send me `length` bytes of file `index` from `offset`"

Hub -> device, on `anju/<site>/<device>/ota/down`: one message per publish,
its first byte the kind:

    "A" u32 counter, 16-byte tag   the hub took the FW_REPORT with that counter
    "O" manifest.bin                an offer: the signed manifest (it proves itself)
    "N"                             no offer now
    "D" id(8) u16 index u32 offset data   a chunk of a release file
    "E" id(8) text                  the hub cannot serve that release (withdrawn)

Offers and chunks need no tag of their own: the manifest is signed by the
site's release key and every file is checked against its SHA-256 in it. The
acknowledgement is tagged with the device's key, so only its hub can make a
device forget failures it has not reported.

The device asks for what it lacks, by offset, so a transfer resumes after a
reset or a power cut where the flash copy ends. Nothing here imports hardware.
"""
import hashlib
import struct

from anju import frame

T_FW_REPORT = 0x02
T_CHUNK_REQ = 0x03

# The most a chunk carries: with its 15-byte header and the topic the PUBLISH
# stays well inside the device client's 4,096-byte packet limit
# (anju.shell.mqtt.MAX_PACKET) and allocates ~2 KiB per chunk.
CHUNK = 2048

ID_LEN = 8

# FW_REPORT `status`: what the update of this device is doing
IDLE = 0
FETCHING = 1        # percent = how much of the offered release is on flash
INSTALLED = 2       # written into the inactive slot, rebooting into its trial
BATTERY_LOW = 3     # an offer is waiting for the battery
REFUSED_SIGNATURE = 4
REFUSED_HASH = 5
REFUSED_VERSION = 6
REFUSED_TRUNCATED = 7
REFUSED_OTHER = 8
STATUSES = ("idle", "fetching", "installed", "battery_low", "refused_signature", "refused_hash",
            "refused_version", "refused_truncated", "refused_other")

# failure reasons of a trial (anju.ota.slots), as numbers on the wire
FAIL_OTHER = 0
FAIL_CRASHED = 1
FAIL_RESET = 2
FAIL_UNCONFIRMED = 3
FAIL_WATCHDOG = 4
FAILURES = ("other", "crashed", "reset", "not_confirmed", "watchdog")
MAX_FAILURES = 4


class TransferError(ValueError):
    """A message that breaks this exchange's format; str(exc) says why."""


def release_id(blob):
    """The 8 bytes that name a release in chunk requests and answers."""
    return hashlib.sha256(blob).digest()[:ID_LEN]


def failure_code(reason):
    if reason.startswith("crashed"):
        return FAIL_CRASHED
    if reason.startswith("reset"):
        return FAIL_RESET
    if reason.startswith("not confirmed"):
        return FAIL_UNCONFIRMED
    if reason.startswith("watchdog"):
        return FAIL_WATCHDOG
    return FAIL_OTHER


def refusal_status(reason):
    """The FW_REPORT status for a refusal's reason (anju.ota.manifest texts)."""
    if reason.startswith("signature") or reason.startswith("truncated or not"):
        return REFUSED_SIGNATURE
    if "SHA-256" in reason:
        return REFUSED_HASH
    if "older than" in reason or "already running" in reason:
        return REFUSED_VERSION
    if "truncated" in reason or " bytes, the manifest says" in reason or "missing" in reason:
        return REFUSED_TRUNCATED
    return REFUSED_OTHER


def report_body(version, slot, trial, status, percent, failures):
    """FW_REPORT body: u16 major, minor, patch; u8 slot (0 a, 1 b); u8 flags
    (bit 0 on trial); u8 status; u8 percent; u8 count, then per failure u16
    major, minor, patch and u8 reason. 11 + 7 n bytes, n <= 4."""
    failures = failures[:MAX_FAILURES]
    out = struct.pack(">HHHBBBBB", version[0], version[1], version[2], 0 if slot == "a" else 1,
                      1 if trial else 0, status, percent, len(failures))
    for ver, code in failures:
        out += struct.pack(">HHHB", ver[0], ver[1], ver[2], code)
    return out


def chunk_request_body(rid, index, offset, length):
    """CHUNK_REQ body: id (8), u16 file index, u32 offset, u16 length: 16 bytes."""
    return bytes(rid) + struct.pack(">HIH", index, offset, length)


def ack_tag(frame_key, device_id, counter):
    return frame.hmac_sha256(frame_key, b"ota\x00", device_id, b"\x00A",
                             struct.pack(">I", counter))[:frame.TAG_LEN]


def ack_message(frame_key, device_id, counter):
    return b"A" + struct.pack(">I", counter) + ack_tag(frame_key, device_id, counter)


def chunk_message(rid, index, offset, data):
    return b"D" + bytes(rid) + struct.pack(">HI", index, offset) + bytes(data)


def parse_down(msg):
    """A hub -> device message as a tuple: ("ack", counter, tag),
    ("offer", blob), ("none",), ("data", id, index, offset, data),
    ("error", id, text). TransferError for anything else."""
    if not msg:
        raise TransferError("empty OTA message")
    kind = msg[0]
    if kind == 0x41:  # A
        if len(msg) != 5 + frame.TAG_LEN:
            raise TransferError("OTA ack of %d bytes" % len(msg))
        return ("ack", struct.unpack(">I", msg[1:5])[0], bytes(msg[5:]))
    if kind == 0x4F:  # O
        return ("offer", bytes(msg[1:]))
    if kind == 0x4E:  # N
        return ("none",)
    if kind == 0x44:  # D
        if len(msg) < 1 + ID_LEN + 6:
            raise TransferError("OTA chunk of %d bytes" % len(msg))
        index, offset = struct.unpack(">HI", msg[1 + ID_LEN:7 + ID_LEN])
        return ("data", bytes(msg[1:1 + ID_LEN]), index, offset, msg[7 + ID_LEN:])
    if kind == 0x45:  # E
        return ("error", bytes(msg[1:1 + ID_LEN]), bytes(msg[1 + ID_LEN:]).decode())
    raise TransferError("unknown OTA message kind 0x%02x" % kind)


def next_request(files, have):
    """(index, offset, length) of the next chunk to ask for, or None when
    every file is complete. `files` are the manifest's (path, size, digest),
    `have[i]` the bytes of file i already on flash."""
    for i in range(len(files)):
        size = files[i][1]
        if have[i] < size:
            return i, have[i], min(CHUNK, size - have[i])
    return None


def percent(files, have):
    total = 0
    done = 0
    for i in range(len(files)):
        total += files[i][1]
        done += min(have[i], files[i][1])
    return 100 if total == 0 else done * 100 // total
