"""Persistent store-and-forward queue for frames.

Frames produced while the link is down are appended here and removed only
after the broker acknowledged them (QoS 1 PUBACK), so they arrive later, in
order; a re-send after a power cut carries the same counter and the hub drops
it as a duplicate, so each arrives once.

On-flash format (two files, names chosen by the caller):
  <name>.d  records: u8 length, frame bytes, u32 CRC-32 of the frame (big-endian)
  <name>.h  u32 offset of the first unsent record in <name>.d, written atomically

A record torn by a power cut fails its CRC and ends the queue; the next append
rewrites the data file without it. The queue never drops a stored frame to make
room: `push` raises QueueFull and the caller decides (see the door sensor).

The storage is injected: any object with read(name) -> bytes or None,
write(name, data) (atomic replace), append(name, data) and remove(name).
"""
import binascii
import struct


class QueueFull(Exception):
    pass


def _crc(data):
    return binascii.crc32(data) & 0xFFFFFFFF


def encode_record(frame):
    n = len(frame)
    if n == 0 or n > 255:
        raise ValueError("frame length")
    return bytes((n,)) + bytes(frame) + struct.pack(">I", _crc(frame))


def scan(data, start):
    """Valid records from `start`: (list of (offset, frame), end offset)."""
    out = []
    pos = start
    size = len(data)
    while pos < size:
        n = data[pos]
        end = pos + 1 + n + 4
        if n == 0 or end > size:
            break
        frame = bytes(data[pos + 1:pos + 1 + n])
        if struct.unpack_from(">I", data, pos + 1 + n)[0] != _crc(frame):
            break
        out.append((pos, frame))
        pos = end
    return out, pos


class PersistentQueue:
    def __init__(self, storage, name, max_bytes=16384):
        self._st = storage
        self._d = name + ".d"
        self._h = name + ".h"
        self.max_bytes = max_bytes
        self._load()

    def _load(self):
        head_raw = self._st.read(self._h)
        head = struct.unpack(">I", head_raw)[0] if head_raw and len(head_raw) == 4 else 0
        data = self._st.read(self._d) or b""
        if head > len(data):
            # a corrupt head: send everything again rather than lose a frame
            # (the hub drops what it already has by its counter)
            head = 0
            self._st.write(self._h, struct.pack(">I", 0))
        records, end = scan(data, head)
        self._records = [frame for _, frame in records]
        self._head = head
        self._size = end
        if end != len(data):
            # torn or corrupt tail: keep only the valid records
            self._rewrite()

    def _rewrite(self):
        blob = b"".join(encode_record(f) for f in self._records)
        # head first: a power cut between the two writes then re-sends the
        # already acknowledged prefix (the hub drops it by counter) instead of
        # pointing an old head into the new, shorter file
        self._st.write(self._h, struct.pack(">I", 0))
        self._st.write(self._d, blob)
        self._head = 0
        self._size = len(blob)

    def __len__(self):
        return len(self._records)

    def push(self, frame):
        rec = encode_record(frame)
        if self._size - self._head + len(rec) > self.max_bytes:
            raise QueueFull()
        if self._head and self._size + len(rec) > self.max_bytes:
            self._rewrite()  # compact: drop the sent prefix from flash
        self._st.append(self._d, rec)
        self._size += len(rec)
        self._records.append(bytes(frame))

    def peek(self, count=1):
        return self._records[:count]

    def pop(self, count=1):
        """Forget the first `count` frames (they were acknowledged)."""
        if count <= 0:
            return
        gone = self._records[:count]
        del self._records[:count]
        if not self._records:
            self._st.remove(self._d)
            self._st.remove(self._h)
            self._head = 0
            self._size = 0
            return
        for f in gone:
            self._head += 1 + len(f) + 4
        self._st.write(self._h, struct.pack(">I", self._head))


class MemoryStorage:
    """Storage in RAM with the same contract as the flash storage (for tests)."""

    def __init__(self):
        self.files = {}

    def read(self, name):
        return self.files.get(name)

    def write(self, name, data):
        self.files[name] = bytes(data)

    def append(self, name, data):
        self.files[name] = self.files.get(name, b"") + bytes(data)

    def remove(self, name):
        if name in self.files:
            del self.files[name]
