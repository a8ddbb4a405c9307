"""The entrance-lock unlock command: building and signing (pure).

Published on ``anju/<site>/<lock>/cmd`` with QoS 1, not retained. The tag is
HMAC-SHA256 with the lock's 32-byte command key over the canonical JSON of
every other field (UTF-8, keys sorted, no spaces), hex-encoded. The lock
verifies the tag in constant time, refuses a command whose ``lock`` is not its
own id, whose ``expires_at`` has passed, or whose ``id`` it has already seen.
Format and lock behaviour are documented in docs/face_access.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json

UNLOCK_VERSION = 1


def canonical(fields: dict) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign(fields: dict, key: bytes) -> str:
    return hmac.new(key, canonical(fields), hashlib.sha256).hexdigest()


def build_unlock(*, command_id: str, site: str, lock: str, entrance: str, resident: str, duration_s: int,
                 issued_at: float, ttl_s: float, score: float, key: bytes) -> dict:
    fields = {
        "v": UNLOCK_VERSION,
        "id": command_id,
        "cmd": "unlock",
        "site": site,
        "lock": lock,
        "entrance": entrance,
        "resident": resident,
        "duration_s": int(duration_s),
        "issued_at": round(float(issued_at), 3),
        "expires_at": round(float(issued_at) + float(ttl_s), 3),
        "reason": "face",
        "score": round(float(score), 4),
    }
    return {**fields, "tag": sign(fields, key)}


def cmd_topic(site: str, lock: str) -> str:
    return f"anju/{site}/{lock}/cmd"


def ack_topic(site: str, lock: str) -> str:
    return f"anju/{site}/{lock}/ack"
