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
read_at(name, offset, n) -> bytes, size(name) -> int or None,
write(name, data) (atomic replace), append(name, data), rename(old, new)
(atomic replace of `new`) and remove(name).
"""
import array
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


CHUNK = 512  # bytes read at a time when the queue is scanned at boot


class PersistentQueue:
    """The queue's frames stay in flash: RAM holds one u32 offset per waiting
    frame (4 KB for the 1,110 frames a lock's 64 KiB queue holds), and a
    frame is read back only when it is sent, so the queue may be far larger
    than the heap."""

    def __init__(self, storage, name, max_bytes=16384):
        self._st = storage
        self._d = name + ".d"
        self._h = name + ".h"
        self._new = name + ".n"
        self.max_bytes = max_bytes
        self._load()

    def _load(self):
        self._st.remove(self._new)  # a compaction a power cut interrupted
        head_raw = self._st.read(self._h)
        head = struct.unpack(">I", head_raw)[0] if head_raw and len(head_raw) == 4 else 0
        size = self._st.size(self._d) or 0
        if head > size:
            # a corrupt head: send everything again rather than lose a frame
            # (the hub drops what it already has by its counter)
            head = 0
            self._st.write(self._h, struct.pack(">I", 0))
        self._offs = array.array("I")
        self._first = 0
        self._head = head
        end = self._scan(head, size)
        self._size = end
        if end != size:
            # torn or corrupt tail: keep only the valid records
            self._rewrite()

    def _scan(self, pos, size):
        """Offsets of the valid records from `pos`, read CHUNK bytes at a time;
        the end of the last valid one."""
        buf = b""
        base = pos  # file offset of buf[0]
        while pos < size:
            need = pos - base + 1
            if len(buf) < need + 255 + 4 and base + len(buf) < size:
                buf = buf[pos - base:] + self._st.read_at(self._d, base + len(buf),
                                                          CHUNK + 260)
                base = pos
            i = pos - base
            if i >= len(buf):
                break
            n = buf[i]
            if n == 0 or pos + 1 + n + 4 > size or i + 1 + n + 4 > len(buf):
                break
            if struct.unpack_from(">I", buf, i + 1 + n)[0] != _crc(buf[i + 1:i + 1 + n]):
                break
            self._offs.append(pos)
            pos += 1 + n + 4
        return pos

    def _rewrite(self):
        """Copy the waiting records to a new file and put it in place (frames
        stream through a small buffer, never all at once)."""
        self._st.remove(self._new)
        offs = self._offs
        new = array.array("I")
        at = 0
        for i in range(self._first, len(offs)):
            start = offs[i]
            stop = offs[i + 1] if i + 1 < len(offs) else self._size
            self._st.append(self._new, self._st.read_at(self._d, start, stop - start))
            new.append(at)
            at += stop - start
        # head first: a power cut between the two steps then re-sends the
        # already acknowledged prefix of the old file (the hub drops it by
        # counter) instead of pointing an old head into the new, shorter file
        self._st.write(self._h, struct.pack(">I", 0))
        if at:
            self._st.rename(self._new, self._d)
        else:
            self._st.remove(self._d)
        self._offs = new
        self._first = 0
        self._head = 0
        self._size = at

    def __len__(self):
        return len(self._offs) - self._first

    def push(self, frame):
        rec = encode_record(frame)
        if self._size - self._head + len(rec) > self.max_bytes:
            raise QueueFull()
        if self._head and self._size + len(rec) > self.max_bytes:
            self._rewrite()  # compact: drop the sent prefix from flash
        self._st.append(self._d, rec)
        self._offs.append(self._size)
        self._size += len(rec)

    def peek(self, count=1):
        """The first `count` waiting frames, read from flash."""
        out = []
        offs = self._offs
        for i in range(self._first, min(len(offs), self._first + max(count, 0))):
            start = offs[i]
            stop = offs[i + 1] if i + 1 < len(offs) else self._size
            out.append(self._st.read_at(self._d, start + 1, stop - start - 5))
        return out

    def pop(self, count=1):
        """Forget the first `count` frames (they were acknowledged)."""
        if count <= 0:
            return
        self._first = min(len(self._offs), self._first + count)
        if self._first >= len(self._offs):
            self._st.remove(self._d)
            self._st.remove(self._h)
            self._offs = array.array("I")
            self._first = 0
            self._head = 0
            self._size = 0
            return
        self._head = self._offs[self._first]
        if self._first >= 256:
            self._offs = self._offs[self._first:]  # keep RAM to what waits
            self._first = 0
        self._st.write(self._h, struct.pack(">I", self._head))


class MemoryStorage:
    """Storage in RAM with the same contract as the flash storage (for tests).
    A file is a list of fixed-size blocks, as on flash, so a large file never
    needs one large allocation (or its copy when it grows)."""

    BLOCK = 2048

    def __init__(self):
        self.files = {}  # name -> [size, [bytearray blocks]]

    def _get(self, name):
        return self.files.get(name)

    def read(self, name):
        f = self.files.get(name)
        return None if f is None else self.read_at(name, 0, f[0])

    def read_at(self, name, offset, n):
        f = self.files.get(name)
        if f is None:
            return b""
        out = bytearray()
        end = min(f[0], offset + n)
        pos = offset
        while pos < end:
            block, at = divmod(pos, self.BLOCK)
            take = min(end - pos, self.BLOCK - at)
            out.extend(f[1][block][at:at + take])
            pos += take
        return bytes(out)

    def size(self, name):
        f = self.files.get(name)
        return None if f is None else f[0]

    def write(self, name, data):
        self.files.pop(name, None)
        self.append(name, data)

    def append(self, name, data):
        f = self.files.get(name)
        if f is None:
            self.files[name] = f = [0, []]
        data = bytes(data)
        done = 0
        while done < len(data):
            at = f[0] % self.BLOCK
            if at == 0:
                f[1].append(bytearray(self.BLOCK))
            take = min(len(data) - done, self.BLOCK - at)
            f[1][-1][at:at + take] = data[done:done + take]
            f[0] += take
            done += take

    def rename(self, old, new):
        self.files[new] = self.files.pop(old)

    def remove(self, name):
        if name in self.files:
            del self.files[name]
