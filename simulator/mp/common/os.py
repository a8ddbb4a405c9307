"""`os` of the simulated board: the names the esp32 and rp2 ports have
(extmod/modos.c with MICROPY_VFS), over the device's LittleFS2 flash, which
the boot mounts at `/`. The unix port's extras (system, getenv, ...) are not
here, so firmware that used them would fail as it would on a chip.
"""
import sys

import _sim

_p = sys.path
sys.path = []
try:
    import os as _host
finally:
    sys.path = _p

sep = "/"
chdir = _host.chdir
getcwd = _host.getcwd
listdir = _host.listdir
ilistdir = _host.ilistdir
mkdir = _host.mkdir
remove = _host.remove
unlink = _host.remove
rename = _host.rename
rmdir = _host.rmdir
stat = _host.stat
statvfs = _host.statvfs
urandom = _host.urandom
mount = _host.mount
umount = _host.umount
VfsLfs2 = _host.VfsLfs2
VfsFat = _host.VfsFat


def sync():
    pass  # writes reach the image as they happen


def dupterm(stream_object=None, index=0):
    return None


def uname():
    b = _sim.boot["board"]
    return (b["port"], _sim.boot["device"], "1.27.0", "v1.27.0 on simulated " + b["name"],
            b["title"] + " with " + b["mcu"].upper())
