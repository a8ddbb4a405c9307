"""Loads the firmware's portable core under CPython for host-side use.

The simulator runs devices on MicroPython (simulator/device.py); the host
still builds real device bytes (BTHome advertisements, frames) with the
device's own core modules, loaded here with a private `__import__` so the
firmware's modules never mix with the hub's. Only the portable core and the
MicroPython built-ins CPython also has are reachable.
"""
import builtins
import os
import types


_PASS_THROUGH = {"struct", "binascii", "hashlib", "json", "errno", "io", "collections",
                 "array", "re", "select", "socket", "ssl", "sys"}


class FirmwareImportError(ImportError):
    pass


class DeviceImporter:
    def __init__(self, firmware_root, shims=None):
        self.root = firmware_root
        self.modules = {}
        self.shims = dict(shims or {})  # module name -> a module given in its place
        self.builtins = dict(vars(builtins))
        self.builtins["__import__"] = self.import_

    def _path(self, name):
        base = os.path.join(self.root, *name.split("."))
        if os.path.isfile(base + ".py"):
            return base + ".py", False
        init = os.path.join(base, "__init__.py")
        if os.path.isfile(init):
            return init, True
        if os.path.isdir(base):
            return base, True  # a namespace package (MicroPython imports one too)
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
            mod.__path__ = [path if os.path.isdir(path) else os.path.dirname(path)]
        self.modules[name] = mod
        if os.path.isdir(path):
            if parent is not None:
                setattr(parent, name.rsplit(".", 1)[1], mod)
            return mod
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


_core = None


def core(name):
    """A portable-core firmware module (e.g. "anju.bthome") for host-side use:
    the simulator and tests build real device bytes with the device's own code."""
    global _core
    if _core is None:
        root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "firmware")
        _core = DeviceImporter(root)
    return _core.load(name)
