"""Run by the MicroPython unix port before its REPL, on the virtual serial
board in app mode: the board's file system (LittleFS2 in the last part of
its flash file) becomes `/`, as it is on a board running MicroPython. What
the REPL writes lands in the flash file; the board boots from it later.

argv: repl_fs.py FLASH_FILE OFFSET BLOCKS BLOCK_SIZE [MPY RELEASE]

With MPY and RELEASE the board models one flashed with another MicroPython
build: `sys.implementation` reports that build's `_mpy` and version (what a
deploy asks before it writes); nothing else changes.
"""
import os
import sys
import vfs


class _Flash:
    # a block device over a region of the flash file (LittleFS2's extended
    # interface: offsets within a block)
    def __init__(self, path, base, blocks, bs):
        self.f = open(path, "r+b")
        self.base = base
        self.blocks = blocks
        self.bs = bs
        self.erased = b"\xff" * bs

    def readblocks(self, block, buf, off=0):
        self.f.seek(self.base + block * self.bs + off)
        self.f.readinto(buf)

    def writeblocks(self, block, buf, off=None):
        self.f.seek(self.base + block * self.bs + (off or 0))
        self.f.write(buf)
        self.f.flush()

    def ioctl(self, op, arg):
        if op == 4:
            return self.blocks
        if op == 5:
            return self.bs
        if op == 6:
            self.f.seek(self.base + arg * self.bs)
            self.f.write(self.erased)
            self.f.flush()
        return 0


def _mount():
    dev = _Flash(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    try:
        fs = vfs.VfsLfs2(dev)
    except OSError:
        # a board flashed a moment ago: MicroPython formats its file system
        # at the first boot (its _boot.py does so when the mount fails)
        vfs.VfsLfs2.mkfs(dev)
        fs = vfs.VfsLfs2(dev)
    vfs.umount("/")
    vfs.mount(fs, "/")
    os.chdir("/")
    sys.path[:] = ["", ".frozen", "/lib"]


class _Impl:
    def __init__(self, real, mpy, version):
        self._real = real
        self._mpy = mpy
        self.version = version

    def __getattr__(self, name):
        return getattr(self._real, name)


class _Sys:
    def __init__(self, real, impl):
        self._real = real
        self.implementation = impl

    def __getattr__(self, name):
        return getattr(self._real, name)


def _model(mpy, release):
    version = tuple(int(v) for v in release.split(".")) + ("",)
    sys.modules["sys"] = _Sys(sys, _Impl(sys.implementation, mpy, version))


_mount()
if len(sys.argv) > 6:
    _model(int(sys.argv[5]), sys.argv[6])
del _mount, _model, _Flash, os, vfs
sys.argv[:] = [""]
del sys
