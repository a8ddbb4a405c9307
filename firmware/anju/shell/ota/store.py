"""The slot storage of OTA updates on the device's flash (anju.ota.install, anju.ota.slots).

Names are paths below `root` ("ota/a/lib/anju/door.mpy"). Replacing a file
goes through a temporary file and `os.rename`, which is atomic on LittleFS, so
a power cut leaves the old or the new content, never a mix.
"""
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
