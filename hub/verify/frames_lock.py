"""Smart-lock message types (docs/protocol.md "Smart lock messages"), 0x20-0x2F.

Registers the lock's frames with `hub.verify.frames` when imported; decoding is pure
and rejects any value outside the documented ranges. A credential id is what
the lock reports for the credential used (its own enrolment id, never a PIN or
a card's secret); it is compared with the residents' `credentials:`.
Never decodes anything it cannot range-check.
"""
import struct

from hub.verify import frames

T_ACCESS = 0x21  # 0x20 is kept for the lock-state report that comes with the firmware
T_FORCED = 0x22

METHODS = {1: "card", 2: "pin", 3: "phone_ble", 4: "face", 5: "mechanical_key"}
OUTCOMES = {1: "unlocked", 2: "denied"}
FORCED_CAUSES = {1: "opened_without_unlock", 2: "bolt_forced"}
CREDENTIAL_LEN = 16
CREDENTIAL_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789:._-")
ACCESS_LEN = 3 + CREDENTIAL_LEN
FORCED_LEN = 1


def decode_access(body):
    method, outcome, n = struct.unpack_from(">BBB", body, 0)
    if method not in METHODS or outcome not in OUTCOMES or n > CREDENTIAL_LEN:
        return None
    raw = body[3:3 + CREDENTIAL_LEN]
    cred, pad = raw[:n], raw[n:]
    if any(b not in CREDENTIAL_CHARS for b in cred) or any(pad):
        return None
    return {"method": METHODS[method], "outcome": OUTCOMES[outcome],
            "credential": cred.decode("ascii") if n else None}


def decode_forced(body):
    cause = FORCED_CAUSES.get(body[0])
    return None if cause is None else {"forced": cause}


def access_body(method, outcome, credential=None):
    """Encoder for tests and the simulator: names as in METHODS/OUTCOMES."""
    m = {v: k for k, v in METHODS.items()}[method]
    o = {v: k for k, v in OUTCOMES.items()}[outcome]
    cred = (credential or "").encode("ascii")
    if len(cred) > CREDENTIAL_LEN:
        raise ValueError("credential id longer than %d bytes" % CREDENTIAL_LEN)
    return struct.pack(">BBB", m, o, len(cred)) + cred.ljust(CREDENTIAL_LEN, b"\x00")


def forced_body(cause):
    return bytes([{v: k for k, v in FORCED_CAUSES.items()}[cause]])


frames.register(T_ACCESS, "access", ACCESS_LEN, decode_access)
frames.register(T_FORCED, "forced", FORCED_LEN, decode_forced)
