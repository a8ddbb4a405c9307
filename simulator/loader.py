"""Runs the unmodified firmware with each device's own shims.

Every simulated device gets its own copy of the firmware modules and its own
`machine`, `time`, `network`, `bluetooth`, `esp32`, `os`, `socket` and
`open` (rooted in the device's flash folder), through a per-device
`__import__`. CPython's real modules stay untouched for the hub and tests
running in the same process. MicroPython's built-in modules that CPython also
has (struct, binascii, hashlib, json) are the real ones.
"""
import builtins
import os
import types

from simulator import shims

_PASS_THROUGH = {"struct", "binascii", "hashlib", "json", "errno", "io", "collections",
                 "array", "re", "select", "socket", "ssl", "sys"}


class FirmwareImportError(ImportError):
    pass


class DeviceImporter:
    def __init__(self, device, firmware_root):
        self.device = device
        self.root = firmware_root
        self.modules = {}
        self.shims = shims.build(device) if device is not None else {}
        self.builtins = dict(vars(builtins))
        self.builtins["__import__"] = self.import_
        if device is not None:
            self.builtins["open"] = self.shims["os"]._open

    def _path(self, name):
        base = os.path.join(self.root, *name.split("."))
        if os.path.isfile(base + ".py"):
            return base + ".py", False
        init = os.path.join(base, "__init__.py")
        if os.path.isfile(init):
            return init, True
        return None, False

    def load(self, name):
        mod = self.modules.get(name)
        if mod is not None:
            return mod
        if "." in name:
            parent = self.load(name.rsplit(".", 1)[0])
        else:
            parent = None
        path, is_pkg = self._path(name)
        if path is None:
            raise FirmwareImportError("no module named '%s' in the firmware or the device" % name)
        mod = types.ModuleType(name)
        mod.__file__ = path
        mod.__builtins__ = self.builtins
        if is_pkg:
            mod.__path__ = [os.path.dirname(path)]
        self.modules[name] = mod
        with open(path, encoding="utf-8") as f:
            code = compile(f.read(), path, "exec")
        exec(code, mod.__dict__)
        if parent is not None:
            setattr(parent, name.rsplit(".", 1)[1], mod)
        return mod

    def _is_firmware(self, name):
        return name.split(".")[0] in ("anju",) or self._path(name)[0] is not None

    def import_(self, name, globals=None, locals=None, fromlist=(), level=0):
        if level:
            raise FirmwareImportError("relative imports are not used in the firmware")
        if name in self.shims:
            mod = self.shims[name]
            if "." in name and not fromlist:
                return self.shims[name.split(".")[0]]
            return mod
        top = name.split(".")[0]
        if top in self.shims and top != name:
            raise FirmwareImportError("the device has no module '%s'" % name)
        if self._is_firmware(name):
            mod = self.load(name)
            if fromlist:
                for item in fromlist:
                    if not hasattr(mod, item) and self._path(name + "." + item)[0]:
                        self.load(name + "." + item)
                return mod
            return self.load(top)
        if top in _PASS_THROUGH:
            return builtins.__import__(name, globals, locals, fromlist, level)
        raise FirmwareImportError("the device has no module '%s' (MicroPython built-ins and "
                                  "the firmware only)" % name)


def run_main(device, firmware_root):
    imp = DeviceImporter(device, firmware_root)
    device.importer = imp
    path = os.path.join(device.fs_root, "main.py")
    mod = types.ModuleType("__main__")
    mod.__file__ = path
    mod.__builtins__ = imp.builtins
    with open(path, encoding="utf-8") as f:
        code = compile(f.read(), path, "exec")
    exec(code, mod.__dict__)




_core = None


def core(name):
    """A portable-core firmware module (e.g. "anju.bthome") for host-side use:
    the simulator and tests build real device bytes with the device's own code."""
    global _core
    if _core is None:
        root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "firmware")
        _core = DeviceImporter(None, root)
    return _core.load(name)
