"""Phone unlock over BLE: the lock's challenge-response (pure; docs/smart_lock.md,
"Phone unlock over BLE").

The lock hands out a fresh 16-byte nonce (random from the caller: os.urandom
on a board) that lives NONCE_TTL_MS and is used once. The phone answers

    credential id (u8 n, 16 bytes) | u8 action (1 lock, 2 unlock) | nonce |
    tag = HMAC-SHA256(phone_key, "anju-ble" 0x00 lock_id 0x00 nonce action cred)[:16]

(`cred` is the 17-byte credential id field). Any answer consumes the
outstanding nonce, whatever its outcome: a second try needs a new challenge,
so a recorded answer never works again. The lock replies

    u8 result | u32 seq | tag = HMAC-SHA256(phone_key, "anju-ble-r" 0x00 lock_id
                                            0x00 nonce result seq)[:16]

over the nonce the phone sent. A reply to an answer the lock could not
authenticate (malformed, unknown or revoked credential, wrong tag) has no
key to be tagged with: its tag is 16 zero bytes.
"""
import struct

from anju import ct
from anju.frame import hmac_sha256

NONCE_LEN = 16
TAG_LEN = 16
CRED_LEN = 17            # u8 n + 16 bytes
CRED_MAX = 16
ANSWER_LEN = CRED_LEN + 1 + NONCE_LEN + TAG_LEN  # 50
REPLY_LEN = 1 + 4 + TAG_LEN                      # 21
NONCE_TTL_MS = 10000

ACTION_LOCK = 1
ACTION_UNLOCK = 2

# Results: 0 done; 1-9 the lock's decision refused it, with the ACCESS
# frame's reason codes (1 unknown_credential ... 9 jammed); 0x80 and up the
# exchange failed.
R_OK = 0
R_UNKNOWN_CREDENTIAL = 1
R_BAD_FORMAT = 0x80
R_NO_CHALLENGE = 0x81    # none outstanding, or not the outstanding one (a replay)
R_EXPIRED = 0x82
R_BAD_TAG = 0x83
# results the lock sends without a key to tag them with (zero tag)
UNAUTHENTICATED = (R_UNKNOWN_CREDENTIAL, R_BAD_FORMAT, R_BAD_TAG)

_DOMAIN = b"anju-ble\x00"
_DOMAIN_R = b"anju-ble-r\x00"
_SEP = b"\x00"
_ZERO_TAG = bytes(TAG_LEN)
_ID_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789:._-"

_PERIOD = 1 << 30        # time.ticks_ms() wraps here on the boards
_HALF = 1 << 29


def ticks_diff(a, b):
    return ((a - b + _HALF) & (_PERIOD - 1)) - _HALF


class PhoneError(ValueError):
    pass


def encode_cred(cred_id):
    """The 17-byte credential id field of a str id (checked)."""
    raw = cred_id.encode() if isinstance(cred_id, str) else bytes(cred_id)
    if not 1 <= len(raw) <= CRED_MAX:
        raise PhoneError("credential id is 1-16 characters")
    for c in raw:
        if c not in _ID_CHARS:
            raise PhoneError("credential id has a character outside A-Z a-z 0-9 : . _ -")
    return bytes((len(raw),)) + raw + bytes(CRED_MAX - len(raw))


def decode_cred(field):
    """The id of a 17-byte credential id field; None when malformed."""
    n = field[0]
    if not 1 <= n <= CRED_MAX:
        return None
    for i in range(1, 1 + n):
        if field[i] not in _ID_CHARS:
            return None
    for i in range(1 + n, CRED_LEN):
        if field[i]:
            return None
    return bytes(field[1:1 + n]).decode()


def answer_tag(phone_key, lock_id, nonce, action, cred_field):
    return hmac_sha256(phone_key, _DOMAIN, lock_id, _SEP, nonce, bytes((action,)),
                       cred_field)[:TAG_LEN]


def reply_tag(phone_key, lock_id, nonce, result, seq):
    return hmac_sha256(phone_key, _DOMAIN_R, lock_id, _SEP, nonce,
                       struct.pack(">BI", result, seq))[:TAG_LEN]


def make_answer(phone_key, lock_id, nonce, action, cred_id):
    """What the phone writes (the host client and the tests build it here)."""
    if len(nonce) != NONCE_LEN:
        raise PhoneError("nonce is 16 bytes")
    if action not in (ACTION_LOCK, ACTION_UNLOCK):
        raise PhoneError("action is 1 (lock) or 2 (unlock)")
    cred = encode_cred(cred_id)
    return cred + bytes((action,)) + bytes(nonce) + answer_tag(
        phone_key, _id_bytes(lock_id), nonce, action, cred)


def read_reply(phone_key, lock_id, nonce, reply):
    """(result, seq, authentic) of the lock's reply to an answer over `nonce`.
    authentic is False for a reply whose tag does not verify."""
    if len(reply) != REPLY_LEN:
        raise PhoneError("a reply is 21 bytes")
    result, seq = struct.unpack(">BI", reply[:5])
    good = ct.equal(reply[5:], reply_tag(phone_key, _id_bytes(lock_id), nonce, result, seq))
    return result, seq, good


def _id_bytes(lock_id):
    return lock_id.encode() if isinstance(lock_id, str) else bytes(lock_id)


class PhoneAuth:
    """The lock's side: one outstanding nonce at a time.

    lookup(cred_id) -> the credential's 16-byte phone key, or None for an
    unknown, revoked or disabled one (the caller's user table decides)."""

    def __init__(self, lock_id, lookup, ttl_ms=NONCE_TTL_MS):
        self.lock_id = _id_bytes(lock_id)
        self.lookup = lookup
        self.ttl_ms = ttl_ms
        self._nonce = bytearray(NONCE_LEN)
        self._issued = None   # ticks_ms of the outstanding nonce; None: none
        self.replies = 0      # u32: the seq of a reply the decision gives none for

    def challenge(self, nonce, now_ms):
        """Make `nonce` (16 fresh random bytes from the caller) the outstanding
        one, replacing any earlier one."""
        if len(nonce) != NONCE_LEN:
            raise PhoneError("nonce is 16 bytes")
        self._nonce[:] = nonce
        self._issued = now_ms
        return nonce

    def pending(self, now_ms):
        """True while a nonce is outstanding and fresh."""
        return self._issued is not None and ticks_diff(now_ms, self._issued) < self.ttl_ms

    def drop(self):
        """Forget the outstanding nonce (the phone went away)."""
        self._issued = None

    def answer(self, data, now_ms, decide):
        """Check the phone's answer; `decide(action, cred_id)` is the lock's
        decision, called only for an authentic, fresh answer: it returns the
        result (0 done, else an ACCESS reason) or (result, seq).

        Returns (result, action, cred_id or None, reply bytes)."""
        issued, self._issued = self._issued, None  # consumed whatever the outcome
        if len(data) != ANSWER_LEN:
            return self._plain(R_BAD_FORMAT, None, None)
        cred = data[:CRED_LEN]
        action = data[CRED_LEN]
        nonce = data[CRED_LEN + 1:CRED_LEN + 1 + NONCE_LEN]
        tag = data[CRED_LEN + 1 + NONCE_LEN:]
        cred_id = decode_cred(cred)
        if cred_id is None or action not in (ACTION_LOCK, ACTION_UNLOCK):
            return self._plain(R_BAD_FORMAT, None, None)
        key = self.lookup(cred_id)
        if key is None:
            return self._plain(R_UNKNOWN_CREDENTIAL, action, cred_id)
        if not ct.equal(tag, answer_tag(key, self.lock_id, nonce, action, cred)):
            return self._plain(R_BAD_TAG, action, cred_id)
        if issued is None or not ct.equal(nonce, self._nonce):
            result, seq = R_NO_CHALLENGE, self._seq()
        elif ticks_diff(now_ms, issued) >= self.ttl_ms:
            result, seq = R_EXPIRED, self._seq()
        else:
            out = decide(action, cred_id)
            if isinstance(out, tuple):
                result, seq = out
            else:
                result, seq = out, self._seq()
            result &= 0xFF
        reply = struct.pack(">BI", result, seq & 0xFFFFFFFF) + reply_tag(
            key, self.lock_id, nonce, result, seq & 0xFFFFFFFF)
        return result, action, cred_id, reply

    def _seq(self):
        self.replies = (self.replies + 1) & 0xFFFFFFFF
        return self.replies

    def _plain(self, result, action, cred_id):
        return result, action, cred_id, struct.pack(">BI", result, 0) + _ZERO_TAG
