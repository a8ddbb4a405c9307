"""Phone unlock over BLE, the phone's side (docs/smart_lock.md, "Phone unlock
over BLE"), with bleak: the same code runs against BlueZ and, with
`backend=simulator.bleak_backend.VirtualClientBackend, radio=..., sim=...`,
against a simulated lock.

    result, seq = await unlock("24:0A:C4:00:00:01", "c-17", phone_key, ACTION_UNLOCK,
                               lock_id="lock-101")

The answer and the reply are built and checked by the lock's own core
(firmware/anju/lock/phone.py). Errors: `LockTimeout` (no challenge or no reply
in time), `UnlockRefused` (the lock said no; `.result`, `.authentic`),
`BadReply` (a reply whose tag is not the lock's), `LockBleError` for the rest
(the lock could not be reached).
"""
from __future__ import annotations

import asyncio
from typing import Any

from bleak import BleakClient
from bleak.exc import BleakError

from simulator import loader

SERVICE_UUID = "5e1f0001-9a6d-4c3b-8e2f-61b0d3a4c5e7"
CHALLENGE_UUID = "5e1f0002-9a6d-4c3b-8e2f-61b0d3a4c5e7"
COMMAND_UUID = "5e1f0003-9a6d-4c3b-8e2f-61b0d3a4c5e7"
RESULT_UUID = "5e1f0004-9a6d-4c3b-8e2f-61b0d3a4c5e7"

ACTION_LOCK = 1
ACTION_UNLOCK = 2
TIMEOUT_S = 5.0

RESULT_NAMES = {
    0: "ok", 1: "unknown_credential", 2: "outside_schedule", 3: "expired", 4: "not_yet_valid",
    5: "disabled", 6: "locked_out", 7: "low_battery", 8: "used", 9: "jammed",
    0x80: "bad_format", 0x81: "no_challenge", 0x82: "nonce_expired", 0x83: "bad_tag",
}


class LockBleError(Exception):
    """The exchange could not be made (the lock was not reachable, the link dropped)."""


class LockTimeout(LockBleError):
    """No challenge or no reply within the timeout."""


class BadReply(LockBleError):
    """A reply whose tag does not verify: not the lock's (tampered or forged)."""


class UnlockRefused(LockBleError):
    """The lock refused. `authentic` is False for the refusals the lock sends
    untagged (it had no key for the answer: unknown credential, wrong tag,
    malformed), which anyone on the air could also have sent."""

    def __init__(self, result: int, seq: int, authentic: bool) -> None:
        super().__init__(f"refused: {RESULT_NAMES.get(result, result)}"
                         + ("" if authentic else " (unauthenticated)"))
        self.result = result
        self.seq = seq
        self.authentic = authentic


def _phone() -> Any:
    return loader.core("anju.lock.phone")


def check_reply(phone_key: bytes, lock_id: str, nonce: bytes, reply: bytes) -> tuple[int, int]:
    """(result 0, seq) of a verified success; raises BadReply or UnlockRefused."""
    ph = _phone()
    try:
        result, seq, authentic = ph.read_reply(phone_key, lock_id, nonce, bytes(reply))
    except ph.PhoneError as exc:
        raise BadReply(str(exc)) from exc
    if not authentic:
        if result in ph.UNAUTHENTICATED and bytes(reply[5:]) == bytes(ph.TAG_LEN):
            raise UnlockRefused(result, seq, False)
        raise BadReply("the reply's tag is not the lock's")
    if result != ph.R_OK:
        raise UnlockRefused(result, seq, True)
    return result, seq


async def unlock(address: str, credential_id: str, phone_key: bytes, action: int,
                 backend: Any = None, *, lock_id: str | None = None,
                 timeout: float = TIMEOUT_S, **backend_kwargs: Any) -> tuple[int, int]:
    """Connect, take the challenge, write the answer, wait for the reply and
    verify it. Returns (0, seq) when the lock did `action`. `lock_id` (the
    lock's device id, bound into both tags) is required."""
    ph = _phone()
    if lock_id is None:
        raise ValueError("lock_id (the lock's device id) is needed")
    challenges: asyncio.Queue[bytes] = asyncio.Queue(4)
    replies: asyncio.Queue[bytes] = asyncio.Queue(4)

    def put(q: asyncio.Queue[bytes]) -> Any:
        def cb(_char: Any, data: bytearray) -> None:
            if q.full():
                q.get_nowait()
            q.put_nowait(bytes(data))
        return cb

    kwargs = dict(backend_kwargs)
    if backend is not None:
        kwargs["backend"] = backend
    client = BleakClient(address, timeout=timeout, **kwargs)
    try:
        await asyncio.wait_for(client.connect(), timeout)
    except asyncio.TimeoutError as exc:
        raise LockTimeout(f"{address}: no connection within {timeout} s") from exc
    except BleakError as exc:
        raise LockBleError(f"{address}: {exc}") from exc
    try:
        await client.start_notify(RESULT_UUID, put(replies))
        await client.start_notify(CHALLENGE_UUID, put(challenges))
        nonce = bytes(await client.read_gatt_char(CHALLENGE_UUID))
        if nonce == bytes(ph.NONCE_LEN) or len(nonce) != ph.NONCE_LEN:
            try:
                nonce = await asyncio.wait_for(challenges.get(), timeout)
            except asyncio.TimeoutError as exc:
                raise LockTimeout(f"{address}: no challenge within {timeout} s") from exc
        answer = ph.make_answer(phone_key, lock_id, nonce, action, credential_id)
        await client.write_gatt_char(COMMAND_UUID, answer, response=True)
        try:
            reply = await asyncio.wait_for(replies.get(), timeout)
        except asyncio.TimeoutError as exc:
            raise LockTimeout(f"{address}: no reply within {timeout} s") from exc
        return check_reply(phone_key, lock_id, nonce, reply)
    except BleakError as exc:
        raise LockBleError(f"{address}: {exc}") from exc
    finally:
        if client.is_connected:
            await client.disconnect()
