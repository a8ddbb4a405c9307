"""Flash storage for the persistent queue and the counter reservation.

Replacing a file goes through a temporary file and `os.rename`, which is atomic
on LittleFS, so a power cut leaves either the old or the new content.
"""
import os
import struct


class FileStorage:
    def __init__(self, root="/data"):
        self.root = root
        try:
            os.mkdir(root)
        except OSError:
            pass  # exists

    def _p(self, name):
        return self.root + "/" + name

    def read(self, name):
        try:
            with open(self._p(name), "rb") as f:
                return f.read()
        except OSError:
            return None

    def write(self, name, data):
        tmp = self._p(name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, self._p(name))

    def read_at(self, name, offset, n):
        """`n` bytes from `offset` (fewer at the end of the file; b"" when it
        does not exist)."""
        try:
            with open(self._p(name), "rb") as f:
                f.seek(offset)
                return f.read(n)
        except OSError:
            return b""

    def size(self, name):
        try:
            return os.stat(self._p(name))[6]
        except OSError:
            return None

    def rename(self, old, new):
        """Put `old` in place of `new` (atomic on LittleFS)."""
        os.rename(self._p(old), self._p(new))

    def append(self, name, data):
        with open(self._p(name), "ab") as f:
            f.write(data)

    def remove(self, name):
        try:
            os.remove(self._p(name))
        except OSError:
            pass  # already gone

    def read_u32(self, name, default=0):
        raw = self.read(name)
        if raw is None or len(raw) != 4:
            return default
        return struct.unpack(">I", raw)[0]

    def write_u32(self, name, value):
        self.write(name, struct.pack(">I", value))
