"""The hub's lock commands (docs/smart_lock.md "Commands"), checked against
bytes and keys computed here independently with struct, hmac, hashlib and
cryptography; and every range check of the builders."""

from __future__ import annotations

import hashlib
import hmac
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from hub.forward import device_commands
from hub.locks import LockError, wire

FRAME_KEY = bytes(range(100, 132))


def h(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


def cred(text: str) -> bytes:
    return bytes((len(text),)) + text.encode().ljust(16, b"\x00")


def test_key_derivations() -> None:
    ck = h(FRAME_KEY, b"anju-lock-cred")
    assert wire.cred_key(FRAME_KEY) == ck
    assert wire.wrap_key(FRAME_KEY) == h(FRAME_KEY, b"anju-lock-wrap")[:16]
    uid = bytes.fromhex("04a1b2c3d4e5f6")
    assert wire.card_digest(FRAME_KEY, uid) == h(ck, b"card\x00" + uid)[:16]
    assert wire.pin_digest(FRAME_KEY, "20261") == h(ck, b"pin\x00" + b"20261")[:16]
    phone = bytes(range(16))
    enc = Cipher(algorithms.AES(h(FRAME_KEY, b"anju-lock-wrap")[:16]), modes.ECB()).encryptor()
    assert wire.wrap_phone_key(FRAME_KEY, phone) == enc.update(phone) + enc.finalize()
    dec = Cipher(algorithms.AES(wire.wrap_key(FRAME_KEY)), modes.ECB()).decryptor()
    assert dec.update(wire.wrap_phone_key(FRAME_KEY, phone)) + dec.finalize() == phone


def test_bodies() -> None:
    assert wire.lock_ctl("unlock", "face", "c-17", valid_s=30) == (
        struct.pack(">HBB", 30, 2, 4) + cred("c-17"))
    assert wire.lock_ctl("lock") == struct.pack(">HBB", 60, 1, 8) + bytes(17)
    assert wire.user_set(3, "week_day_schedule", 0x1F, 480, 1080, 1000, 2000, 0, 120) == (
        struct.pack(">HHBBHHIIH", 120, 3, 1, 0x1F, 480, 1080, 1000, 2000, 0))
    assert wire.user_remove(65535, 5) == struct.pack(">HH", 5, 65535)
    digest = bytes(range(16))
    assert wire.cred_set(2, "pin", "c-9", digest) == (
        struct.pack(">HHB", 600, 2, 2) + cred("c-9") + digest)
    assert wire.cred_set(2, "fingerprint", "L:fp:1", 513)[-16:] == b"\x02\x01" + bytes(14)
    assert wire.cred_remove("c-9", 1) == struct.pack(">H", 1) + cred("c-9")
    assert wire.set_time(480, 7) == struct.pack(">hI", 480, 7)
    assert wire.set_time(-300, 2 ** 32 - 1) == struct.pack(">hI", -300, 2 ** 32 - 1)
    assert wire.settings(30, 3, 120, 60) == struct.pack(">HHBHHB", 600, 30, 3, 120, 60, 0)
    for mtype, body in ((wire.T_LOCK_CTL, wire.lock_ctl("lock")),
                        (wire.T_USER_SET, wire.user_set(1)),
                        (wire.T_USER_REMOVE, wire.user_remove(1)),
                        (wire.T_CRED_SET, wire.cred_set(1, "card", "c-1", digest)),
                        (wire.T_CRED_REMOVE, wire.cred_remove("c-1")),
                        (wire.T_SET_TIME, wire.set_time(0, 1)),
                        (wire.T_SETTINGS, wire.settings())):
        assert len(body) == wire.BODY_LEN[mtype]


def test_signed_command_frame() -> None:
    body = wire.lock_ctl("unlock")
    data = device_commands.encode_command(FRAME_KEY, "lock-101", wire.T_LOCK_CTL, 4242,
                                          device_commands.device_time(1_795_000_000.0), body)
    header = struct.pack(">BBIIB", 0xA1, 0x28, 4242, 1_795_000_000 - 946_684_800, 21) + body
    assert data == header + h(FRAME_KEY, b"cmd\x00lock-101\x00" + header)[:16]


BAD = [
    ("valid_0", lambda: wire.lock_ctl("lock", valid_s=0)),
    ("valid_601", lambda: wire.lock_ctl("lock", valid_s=601)),
    ("action", lambda: wire.lock_ctl("open")),
    ("ctl_method", lambda: wire.lock_ctl("unlock", "card")),
    ("who_too_long", lambda: wire.lock_ctl("unlock", who="x" * 17)),
    ("user_0", lambda: wire.user_set(0)),
    ("user_type", lambda: wire.user_set(1, "guest")),
    ("week_days", lambda: wire.user_set(1, week_days=0x80)),
    ("end_1441", lambda: wire.user_set(1, end_min=1441)),
    ("start_not_before_end", lambda: wire.user_set(1, start_min=600, end_min=600)),
    ("until_before_from", lambda: wire.user_set(1, valid_from=10, valid_until=5)),
    ("expire_neg", lambda: wire.user_set(1, expire_min=-1)),
    ("remove_user_0", lambda: wire.user_remove(0)),
    ("cred_kind_face", lambda: wire.cred_set(1, "face", "c-1", bytes(16))),
    ("cred_kind", lambda: wire.cred_set(1, "key", "c-1", bytes(16))),
    ("cred_data_15", lambda: wire.cred_set(1, "card", "c-1", bytes(15))),
    ("cred_no_id", lambda: wire.cred_set(1, "card", "", bytes(16))),
    ("cred_bad_char", lambda: wire.cred_remove("c 1")),
    ("offset", lambda: wire.set_time(841, 1)),
    ("offset_west", lambda: wire.set_time(-721, 1)),
    ("answers_nothing", lambda: wire.set_time(0, 0)),
    ("relock", lambda: wire.settings(relock_s=3601)),
    ("wrong_limit_0", lambda: wire.settings(wrong_limit=0)),
    ("wrong_limit_6", lambda: wire.settings(wrong_limit=6)),
    ("lockout_89", lambda: wire.settings(lockout_s=89)),
    ("ajar_9", lambda: wire.settings(ajar_s=9)),
    ("pin_3", lambda: wire.pin_digest(FRAME_KEY, "123")),
    ("pin_9", lambda: wire.pin_digest(FRAME_KEY, "123456789")),
    ("pin_letters", lambda: wire.pin_digest(FRAME_KEY, "12a4")),
    ("card_5", lambda: wire.card_digest(FRAME_KEY, bytes(5))),
    ("phone_15", lambda: wire.wrap_phone_key(FRAME_KEY, bytes(15))),
]


@pytest.mark.parametrize("build", [b[1] for b in BAD], ids=[b[0] for b in BAD])
def test_out_of_range_is_refused(build) -> None:
    with pytest.raises(LockError):
        build()


def test_one_counter_space_per_device(tmp_path) -> None:
    from hub.store import Store
    store = Store(tmp_path / "hub.db")
    try:
        now = 1_795_000_000.0
        floor = (int(now) - device_commands.COUNTER_EPOCH) * device_commands.COUNTER_PER_S
        with store.transaction() as tx:
            tx.rule_set("smoke", "hubctr:smoke-1", floor + 500)  # kept by an older hub
            assert device_commands.allocate_counter(tx, "smoke-1", now) == floor + 501
            assert device_commands.allocate_counter(tx, "smoke-1", now) == floor + 502
            assert device_commands.allocate_counter(tx, "lock-1", now) == floor
    finally:
        store.close()
