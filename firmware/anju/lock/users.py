"""The lock's users and credentials (Matter DoorLock model, docs/smart_lock.md).

Everything lives in three bytearrays of fixed-size records, never in one
Python object per user or credential (an ESP32 has about 112 KB of heap):

user record, USER_REC = 22 bytes, user index i at (i - 1) * USER_REC:
  u8 state (bit0 present, bit1 one-time used, bit2 expiring started),
  u8 type, u8 week days (bit0 Monday ... bit6 Sunday), u8 0,
  u16 start_min, u16 end_min, u32 from, u32 until, u16 expire_min,
  u32 first use (device time the expiring period started)

credential record, CRED_REC = 35 bytes, slot s at s * CRED_REC:
  u8 kind (0: free slot), u16 user, 16 bytes id (zero padded), 16 bytes data

index: open addressing over (kind, data), u16 per bucket (slot + 1, 0 empty),
at least twice as many buckets as slots, so a lookup compares one or two
records whatever the table holds. The data are HMAC digests (cards, PINs),
random keys (phones) or template ids (fingerprints), so their first two bytes
spread well.

Files (`dump_users`, `dump_credentials`): 4-byte magic, u16 record count,
u16 record size, the records, u32 CRC-32 of all before it. `load_*` raises
TableError for a torn, corrupt or foreign file, leaving the table as it was,
so the caller can fall back (a previous copy, or an empty table).

Pure. It never logs a credential's data.
"""
import binascii
import struct

from anju import ct
from anju.lock import wire

USER_REC = 22
CRED_REC = 35
_USER_FMT = ">BBBBHHIIHI"
_ID_OFF = 3
_DATA_OFF = 3 + wire.ID_LEN

US_PRESENT = 0x01
US_USED = 0x02
US_STARTED = 0x04

MAGIC_USERS = b"LKU1"
MAGIC_CREDS = b"LKC1"
_FILE_HEAD = 8
_FILE_TAIL = 4


class TableError(ValueError):
    """A table file that must not be loaded; `reason` says why."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def _buckets(n):
    b = 8
    while b < 2 * n:
        b <<= 1
    return b


class Table:
    __slots__ = ("max_users", "max_credentials", "users", "creds", "index", "_mask")

    def __init__(self, max_users=100, max_credentials=200):
        if not 1 <= max_users <= 0xFFFE or not 1 <= max_credentials <= 0xFFFE:
            raise ValueError("max_users and max_credentials must be 1..65534")
        self.max_users = max_users
        self.max_credentials = max_credentials
        self.users = bytearray(max_users * USER_REC)
        self.creds = bytearray(max_credentials * CRED_REC)
        buckets = _buckets(max_credentials)
        self._mask = buckets - 1
        self.index = bytearray(2 * buckets)

    def record_bytes(self):
        """RAM (and flash, plus 12 bytes per file) the records take."""
        return len(self.users) + len(self.creds) + len(self.index)

    # ---- users -------------------------------------------------------------

    def has_user(self, user):
        return 1 <= user <= self.max_users and self.users[(user - 1) * USER_REC] & US_PRESENT

    def user(self, user):
        """(state, type, days, start_min, end_min, from, until, expire_min, first_use)
        or None."""
        if not self.has_user(user):
            return None
        r = struct.unpack_from(_USER_FMT, self.users, (user - 1) * USER_REC)
        return r[:3] + r[4:]

    def user_count(self):
        n = 0
        for i in range(0, len(self.users), USER_REC):
            if self.users[i] & US_PRESENT:
                n += 1
        return n

    def free_user(self):
        """The lowest free user index, 0 when the table is full."""
        for u in range(1, self.max_users + 1):
            if not self.users[(u - 1) * USER_REC] & US_PRESENT:
                return u
        return 0

    def set_user(self, user, utype, days=0, start_min=0, end_min=1440, frm=0, until=0,
                 expire_min=0):
        """Add or replace a user (RES_OK, or RES_BAD_VALUE beyond max_users).

        A replaced user keeps its one-time / expiring progress while its type
        stays the same, so re-sending a user cannot re-arm a used one-time code.
        """
        if not 1 <= user <= self.max_users:
            return wire.RES_BAD_VALUE
        off = (user - 1) * USER_REC
        state = US_PRESENT
        first = 0
        if self.users[off] & US_PRESENT and self.users[off + 1] == utype:
            state = self.users[off]
            first = struct.unpack_from(">I", self.users, off + 18)[0]
        struct.pack_into(_USER_FMT, self.users, off, state, utype, days, 0, start_min, end_min,
                         frm, until, expire_min, first)
        return wire.RES_OK

    def remove_user(self, user):
        """Remove a user and all its credentials: (result, credentials removed)."""
        if not self.has_user(user):
            return wire.RES_UNKNOWN_USER, 0
        off = (user - 1) * USER_REC
        self.users[off:off + USER_REC] = bytes(USER_REC)
        gone = 0
        for s in range(self.max_credentials):
            o = s * CRED_REC
            if self.creds[o] and ((self.creds[o + 1] << 8) | self.creds[o + 2]) == user:
                self.creds[o:o + CRED_REC] = bytes(CRED_REC)
                gone += 1
        if gone:
            self._reindex()
        return wire.RES_OK, gone

    def mark_used(self, user):
        self.users[(user - 1) * USER_REC] |= US_USED

    def start_expiry(self, user, now):
        off = (user - 1) * USER_REC
        self.users[off] |= US_STARTED
        struct.pack_into(">I", self.users, off + 18, now)

    # ---- credentials ---------------------------------------------------------

    def _hash(self, kind, data):
        return (((data[0] << 8) | data[1]) ^ (kind * 0x9E5)) & self._mask

    def _insert_index(self, slot):
        o = slot * CRED_REC
        b = self._hash(self.creds[o], memoryview(self.creds)[o + _DATA_OFF:o + _DATA_OFF + 2])
        idx = self.index
        while idx[2 * b] or idx[2 * b + 1]:
            b = (b + 1) & self._mask
        v = slot + 1
        idx[2 * b] = v >> 8
        idx[2 * b + 1] = v & 0xFF

    def _reindex(self):
        idx = self.index
        for i in range(len(idx)):
            idx[i] = 0
        for s in range(self.max_credentials):
            if self.creds[s * CRED_REC]:
                self._insert_index(s)

    def find(self, kind, data):
        """The slot of the credential with this kind and data, or -1."""
        if kind == 0 or data is None or len(data) != wire.DATA_LEN:
            return -1
        idx = self.index
        creds = self.creds
        b = self._hash(kind, data)
        mv = memoryview(creds)
        for _ in range(len(idx) // 2):
            v = (idx[2 * b] << 8) | idx[2 * b + 1]
            if v == 0:
                return -1
            o = (v - 1) * CRED_REC
            if creds[o] == kind and ct.equal(mv[o + _DATA_OFF:o + CRED_REC], data):
                return v - 1
            b = (b + 1) & self._mask
        return -1

    def find_id(self, cid):
        """The slot of the credential with id `cid` (bytes), or -1."""
        n = len(cid)
        if n == 0 or n > wire.ID_LEN:
            return -1
        padded = bytes(cid) + bytes(wire.ID_LEN - n)
        creds = self.creds
        for s in range(self.max_credentials):
            o = s * CRED_REC
            if creds[o] and creds[o + _ID_OFF:o + _DATA_OFF] == padded:
                return s
        return -1

    def credential(self, slot):
        """(kind, user, id) of a slot in use (the data stay in the table)."""
        o = slot * CRED_REC
        raw = bytes(self.creds[o + _ID_OFF:o + _DATA_OFF])
        end = raw.find(b"\x00")
        return (self.creds[o], (self.creds[o + 1] << 8) | self.creds[o + 2],
                raw if end < 0 else raw[:end])

    def credential_data(self, slot):
        o = slot * CRED_REC
        return bytes(self.creds[o + _DATA_OFF:o + CRED_REC])

    def credential_count(self):
        n = 0
        for o in range(0, len(self.creds), CRED_REC):
            if self.creds[o]:
                n += 1
        return n

    def set_credential(self, user, kind, cid, data):
        """Add or replace the credential `cid`: RES_OK, RES_UNKNOWN_USER,
        RES_DUPLICATE (another credential has this kind and data), RES_FULL,
        RES_BAD_VALUE (not a kind the lock stores, bad id or data)."""
        if kind not in wire.KINDS or kind == wire.K_FACE or len(data) != wire.DATA_LEN \
                or not wire.valid_id(cid):
            return wire.RES_BAD_VALUE
        if not self.has_user(user):
            return wire.RES_UNKNOWN_USER
        slot = self.find_id(cid)
        other = self.find(kind, data)
        if other >= 0 and other != slot:
            return wire.RES_DUPLICATE
        if slot < 0:
            for s in range(self.max_credentials):
                if not self.creds[s * CRED_REC]:
                    slot = s
                    break
            else:
                return wire.RES_FULL
        o = slot * CRED_REC
        rec = struct.pack(">BH", kind, user) + bytes(cid) + bytes(wire.ID_LEN - len(cid)) + bytes(data)
        replacing = self.creds[o] != 0
        self.creds[o:o + CRED_REC] = rec
        if replacing:
            self._reindex()
        else:
            self._insert_index(slot)
        return wire.RES_OK

    def remove_credential(self, cid):
        """(RES_OK, user) or (RES_UNKNOWN_CREDENTIAL, 0)."""
        slot = self.find_id(cid)
        if slot < 0:
            return wire.RES_UNKNOWN_CREDENTIAL, 0
        o = slot * CRED_REC
        user = (self.creds[o + 1] << 8) | self.creds[o + 2]
        self.creds[o:o + CRED_REC] = bytes(CRED_REC)
        self._reindex()
        return wire.RES_OK, user

    def drop_orphans(self):
        """Remove credentials whose user is absent (after a fallback); the count."""
        gone = 0
        for s in range(self.max_credentials):
            o = s * CRED_REC
            if self.creds[o] and not self.has_user((self.creds[o + 1] << 8) | self.creds[o + 2]):
                self.creds[o:o + CRED_REC] = bytes(CRED_REC)
                gone += 1
        if gone:
            self._reindex()
        return gone

    # ---- files ----------------------------------------------------------------

    def dump_users(self):
        return _dump(MAGIC_USERS, USER_REC, self.users)

    def dump_credentials(self):
        return _dump(MAGIC_CREDS, CRED_REC, self.creds)

    def load_users(self, blob):
        records = _check(blob, MAGIC_USERS, USER_REC, self.max_users)
        for o in range(0, len(records), USER_REC):
            state, utype = records[o], records[o + 1]
            if state & ~(US_PRESENT | US_USED | US_STARTED) or (state and not state & US_PRESENT) \
                    or (state and utype >= wire.USER_TYPES):
                raise TableError("bad_record")
        _copy_in(self.users, records)

    def load_credentials(self, blob):
        records = _check(blob, MAGIC_CREDS, CRED_REC, self.max_credentials)
        for o in range(0, len(records), CRED_REC):
            kind = records[o]
            if kind and (kind not in wire.KINDS or kind == wire.K_FACE):
                raise TableError("bad_record")
        _copy_in(self.creds, records)
        self._reindex()


def _dump(magic, size, records):
    head = magic + struct.pack(">HH", len(records) // size, size)
    crc = binascii.crc32(records, binascii.crc32(head)) & 0xFFFFFFFF
    return head + bytes(records) + struct.pack(">I", crc)


def _check(blob, magic, size, capacity):
    """The records of a table file (a memoryview), checked; TableError otherwise."""
    if blob is None or len(blob) < _FILE_HEAD + _FILE_TAIL:
        raise TableError("truncated")
    if bytes(blob[0:4]) != magic:
        raise TableError("bad_magic")
    count, rec = struct.unpack_from(">HH", blob, 4)
    if rec != size:
        raise TableError("bad_record_size")
    if len(blob) != _FILE_HEAD + count * size + _FILE_TAIL:
        raise TableError("truncated")
    mv = memoryview(blob)
    body_end = len(blob) - _FILE_TAIL
    crc = binascii.crc32(mv[_FILE_HEAD:body_end], binascii.crc32(mv[0:_FILE_HEAD])) & 0xFFFFFFFF
    if crc != struct.unpack_from(">I", blob, body_end)[0]:
        raise TableError("bad_crc")
    records = mv[_FILE_HEAD:body_end]
    # a file from a larger table loads when the slots beyond this one are free
    for o in range(capacity * size, len(records), size):
        if records[o]:
            raise TableError("too_many_records")
    return records


def _copy_in(dest, records):
    n = min(len(dest), len(records))
    dest[0:n] = records[0:n]
    for i in range(n, len(dest)):
        dest[i] = 0
