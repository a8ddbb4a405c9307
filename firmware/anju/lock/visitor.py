"""Visitor codes at the lock: the offline verifier and the blocked list
(docs/visitors.md, "Offline codes" and "At the lock").

A visitor code is ten digits the hub made with `hub/visitors/passcode.py`:
its window (start slot mod 2880, one of 32 durations), a one-time flag and a
keyed check value. `verify` decides one code at device time `now`:

    parse -> start slot from the lock's clock -> check value (constant time)
          -> window -> blocked list

The start slot is the latest slot at or before now that has the code's
residue mod 2880; the check is also computed for the slot 30 days later, so
a genuine code typed before its window is told apart (`NOT_YET`) from a
wrong one (`BAD_CODE`, which the decision counts toward the keypad's
wrong-code lockout). With no clock set nothing is decided (`NO_CLOCK`).

The blocked list holds the one-time codes used and the codes the hub
revoked, each until its window ends; it lives in one bytearray of fixed
8-byte records and in a flash file (temp file + rename, like the user
table), so a power cut cannot make a used one-time code work again:

record (REC = 8 bytes): u32 start slot, u8 duration index, u8 flags
  (bit0 one-time, bit1 used, bit2 revoked), u16 check value
file: magic "LKV1", u16 record count, u16 record size, u32 lost-until slot
  (0 none), the records, u32 CRC-32 of all before it

A file that does not load (its CRC fails: flash damage, not a power cut,
which temp file + rename leaves whole) may have held live entries: the lock
then refuses every visitor code for 30 days from its next clock (`lose`,
`lost_until`), the longest a code it listed can still be live.

Entries are purged only while the clock is set (a lock without a clock
cannot know that a window has ended) and before a new entry is refused for
want of room: a full list refuses (a one-time code is not opened, a
revocation is answered `full`), it never drops a live entry.

Pure. It never logs a code or its digits; only the code's identity
(start slot and check value, `ident`) leaves it.
"""
import binascii
import struct

from anju import ct
from anju.frame import hmac_sha256

SLOT_S = 900
START_MOD = 2880  # slots in 30 days
DURATIONS = (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64, 96, 144, 192,
             288, 384, 480, 576, 672, 768, 864, 960, 1056, 1152, 1248, 1344)  # in slots
N_DURATIONS = 32
PAYLOAD_MOD = START_MOD * N_DURATIONS * 2  # 184,320
CHECK_MOD = 54253  # 10**10 // PAYLOAD_MOD
CODE_DIGITS = 10

# verify() results
OK = 0
BAD_CODE = 1     # not a code of this lock (wrong length, check >= CHECK_MOD, wrong check)
NO_CLOCK = 2
NOT_YET = 3      # genuine, its window has not started
EXPIRED = 4      # genuine, its window has ended
USED = 5         # a one-time code already used
REVOKED = 6
FULL = 7         # (add) no room on the blocked list
LOST = 8         # refused: the list's file was lost (Blocked.lose)

F_ONE_TIME = 0x01
F_USED = 0x02
F_REVOKED = 0x04

REC = 8
MAGIC = b"LKV1"
_FILE_HEAD = 12
DEFAULT_CAPACITY = 128
LOST_PENDING = 0xFFFFFFFF  # lost_until before the clock is known


def visit_key(frame_key):
    """HMAC-SHA256(frame_key, "anju-lock-visit"): the lock's key for its codes."""
    return hmac_sha256(frame_key, b"anju-lock-visit")


def check_value(vkey, start_slot, duration_index, one_time):
    msg = struct.pack(">IBB", start_slot, duration_index, 1 if one_time else 0)
    d = hmac_sha256(vkey, b"visit\x00", msg)
    return int.from_bytes(d[:8], "big") % CHECK_MOD


def parse(digits):
    """(check, start residue, duration index, one-time) of ten digits, or None."""
    if isinstance(digits, str):
        digits = digits.encode()
    if len(digits) != CODE_DIGITS:
        return None
    c = 0
    for ch in digits:
        if not 0x30 <= ch <= 0x39:
            return None
        c = c * 10 + ch - 0x30
    check = c // PAYLOAD_MOD
    if check >= CHECK_MOD:
        return None
    p = c - check * PAYLOAD_MOD
    return check, p % START_MOD, (p // START_MOD) % N_DURATIONS, p // (START_MOD * N_DURATIONS)


def start_slot(now, residue):
    """The latest slot at or before `now` (device time) that is `residue` mod 2880."""
    now_slot = now // SLOT_S
    return now_slot - (now_slot - residue) % START_MOD


def ends(start, duration_index):
    """The device time a window ends (exclusive)."""
    return (start + DURATIONS[duration_index]) * SLOT_S


def ident(start, check):
    """The code's identity as the ACCESS and CMD_RESULT credential id: v:<slot>:<check>."""
    return ("v:%d:%d" % (start, check)).encode()


def _same(a, b):
    return ct.equal(struct.pack(">I", a), struct.pack(">I", b))


def verify(vkey, digits, now, clock_set, blocked):
    """(result, code) for a keypad entry; `code` is (start slot, duration
    index, one-time, check) for a genuine code, else None. OK means open:
    the caller then spends a one-time code with `blocked.add(..., F_USED)`
    (persisted) before it opens."""
    if not clock_set:
        return NO_CLOCK, None
    p = parse(digits)
    if p is None:
        return BAD_CODE, None
    check, residue, d, ot = p
    cur = start_slot(now, residue)
    nxt = cur + START_MOD
    # both candidates are always computed and compared: the time taken does
    # not say which one matched, or how much of the check did
    c_cur = check_value(vkey, cur, d, ot) if cur >= 0 else CHECK_MOD
    c_nxt = check_value(vkey, nxt, d, ot)
    m_cur = _same(c_cur, check)
    m_nxt = _same(c_nxt, check)
    if m_cur:
        code = (cur, d, ot, check)
        if now >= ends(cur, d):
            return EXPIRED, code
        flags = blocked.flags(cur, d, ot, check)
        if flags & F_REVOKED:
            return REVOKED, code
        if flags & F_USED:
            return USED, code
        return OK, code
    if m_nxt:
        return NOT_YET, (nxt, d, ot, check)
    return BAD_CODE, None


class Blocked:
    """The blocked list: used one-time codes and revoked codes, until their
    windows end. `capacity` records of REC bytes in one bytearray."""

    __slots__ = ("capacity", "n", "buf", "lost_until")

    def __init__(self, capacity=DEFAULT_CAPACITY):
        if not 1 <= capacity <= 0xFFFF:
            raise ValueError("blocked list capacity must be 1..65535")
        self.capacity = capacity
        self.n = 0
        self.buf = bytearray(capacity * REC)
        self.lost_until = 0  # slot: every code refused before it (a lost file)

    def lose(self):
        """The file did not load: refuse every code until 30 days after the
        clock is next known (`lost`)."""
        self.lost_until = LOST_PENDING

    def lost(self, now):
        """Whether codes are refused at device time `now` (clock set) for a
        lost file; True when it fixed the end of that time (persist)."""
        slot = now // SLOT_S
        if self.lost_until == LOST_PENDING:
            self.lost_until = slot + START_MOD
            return True
        if self.lost_until and slot >= self.lost_until:
            self.lost_until = 0
        return False

    def refusing(self, now):
        return self.lost_until != 0 and now // SLOT_S < self.lost_until

    def __len__(self):
        return self.n

    def _find(self, start, d, ot, check):
        # reads the bytes in place: no tuple per entry (the scan allocates nothing)
        b = self.buf
        f1 = F_ONE_TIME if ot else 0
        for i in range(self.n):
            o = i * REC
            if (b[o + 6] << 8 | b[o + 7]) == check and b[o + 4] == d \
                    and (b[o + 5] & F_ONE_TIME) == f1 \
                    and (b[o] << 24 | b[o + 1] << 16 | b[o + 2] << 8 | b[o + 3]) == start:
                return i
        return -1

    def flags(self, start, d, ot, check):
        """The entry's flags (F_USED, F_REVOKED), 0 when it is not listed."""
        i = self._find(start, d, ot, check)
        return 0 if i < 0 else self.buf[i * REC + 5] & (F_USED | F_REVOKED)

    def entry(self, i):
        """(start slot, duration index, flags, check) of entry i."""
        return struct.unpack_from(">IBBH", self.buf, i * REC)

    def purge(self, now):
        """Drop the entries whose window ended by device time `now`; how many."""
        b = self.buf
        now_slot = now // SLOT_S
        j = 0
        for i in range(self.n):
            o = i * REC
            s = b[o] << 24 | b[o + 1] << 16 | b[o + 2] << 8 | b[o + 3]
            if now_slot < s + DURATIONS[b[o + 4]]:
                if i != j:
                    b[j * REC:(j + 1) * REC] = b[o:o + REC]
                j += 1
        gone = self.n - j
        for k in range(j * REC, self.n * REC):
            b[k] = 0
        self.n = j
        return gone

    def add(self, start, d, ot, check, flag, now):
        """List a code as F_USED or F_REVOKED (an entry already listed gains
        the flag). OK, or FULL when no room is left once the ended entries
        are purged; the list is then unchanged."""
        if not 0 <= start <= 0xFFFFFFFF or not 0 <= d < N_DURATIONS or not 0 <= check < CHECK_MOD:
            raise ValueError("not a visitor code")
        i = self._find(start, d, ot, check)
        if i >= 0:
            self.buf[i * REC + 5] |= flag
            return OK
        if self.n >= self.capacity:
            self.purge(now)
            if self.n >= self.capacity:
                return FULL
        struct.pack_into(">IBBH", self.buf, self.n * REC, start, d,
                         flag | (F_ONE_TIME if ot else 0), check)
        self.n += 1
        return OK

    def dump(self):
        head = MAGIC + struct.pack(">HHI", self.n, REC, self.lost_until)
        body = head + bytes(self.buf[:self.n * REC])
        return body + struct.pack(">I", binascii.crc32(body) & 0xFFFFFFFF)

    def load(self, blob):
        """Entries from a file made by dump(). False (the list unchanged) for a
        torn, corrupt or foreign file, or one with more entries than fit."""
        if blob is None or len(blob) < _FILE_HEAD + 4 or bytes(blob[:4]) != MAGIC:
            return False
        n, size = struct.unpack_from(">HH", blob, 4)
        end = _FILE_HEAD + n * REC
        if size != REC or n > self.capacity or len(blob) != end + 4:
            return False
        if binascii.crc32(bytes(blob[:end])) & 0xFFFFFFFF != struct.unpack_from(">I", blob, end)[0]:
            return False
        self.buf[:n * REC] = blob[_FILE_HEAD:end]
        for k in range(n * REC, self.n * REC):
            self.buf[k] = 0
        self.n = n
        self.lost_until = struct.unpack_from(">I", blob, 8)[0]
        return True
