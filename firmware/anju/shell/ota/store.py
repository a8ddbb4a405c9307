"""The slot storage of OTA updates on the device's flash (anju.ota.install, anju.ota.slots).

Names are paths below `root` ("ota/a/lib/anju/door.mpy"). Replacing a file
goes through a temporary file and `os.rename`, which is atomic on LittleFS, so
a power cut leaves the old or the new content, never a mix.
"""
import hashlib
import os

from anju.shell.storage import FileStorage


def _is_dir(mode):
    return mode & 0x4000


class SlotStore(FileStorage):
    """FileStorage below `root` (the file system's root by default) whose
    names may hold directories, made as a file is first written there."""

    def __init__(self, root=""):
        self.root = root.rstrip("/")

    def _p(self, name):
        return self.root + "/" + name if self.root else name

    def _makedirs(self, path):
        i = path.find("/", 1)
        while i > 0:
            try:
                os.mkdir(path[:i])
            except OSError:
                pass  # exists
            i = path.find("/", i + 1)

    def write(self, name, data):
        self._makedirs(self._p(name))
        FileStorage.write(self, name, data)

    def write_file(self, name, src):
        """Replace `name` with the rest of the open file `src`, 512 bytes at a
        time (temp file + rename, as write); a staged file (`src.path`:
        anju.shell.ota.fetch.Staged) is closed and moved there instead."""
        path = self._p(name)
        self._makedirs(path)
        staged = getattr(src, "path", None)
        if staged is not None:
            src.close()
            os.rename(staged, path)  # atomic on LittleFS: the staging loses it, the slot has it
            return
        buf = bytearray(512)
        with open(path + ".tmp", "wb") as f:
            while True:
                n = src.readinto(buf)
                if not n:
                    break
                f.write(buf if n == len(buf) else buf[:n])
        os.rename(path + ".tmp", path)

    def digest(self, name):
        """(size, SHA-256) of `name` as it is on flash, or None."""
        try:
            f = open(self._p(name), "rb")
        except OSError:
            return None
        h = hashlib.sha256()
        buf = bytearray(512)
        size = 0
        with f:
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                size += n
                h.update(buf if n == len(buf) else buf[:n])
        return size, h.digest()

    def files(self, prefix):
        """Names of the files under directory `prefix` (ending in "/")."""
        out = []
        self._walk(prefix.rstrip("/"), out)
        return out

    def _walk(self, rel, out):
        try:
            entries = list(os.ilistdir(self._p(rel)))
        except OSError:
            return
        for entry in entries:
            name, mode = entry[0], entry[1]
            child = rel + "/" + name
            if _is_dir(mode):
                self._walk(child, out)
            else:
                out.append(child)
