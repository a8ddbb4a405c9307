"""Guard: no test reads files that a clone of the repository does not have.

A user who clones anju has only the clone. Test data that lives beside it
(a sibling folder of the checkout) makes the suite pass here and fail
there. An audit hook (PEP 578) watches every file the test process opens or
lists; a path in the clone's parent folder but outside the clone is recorded,
and the test that read it fails (tests/conftest.py).

Allowed outside the clone: the system temp folder (pytest's tmp_path lives
there), the user's dot-folders (pip and npm caches), and ``ANJU_FACE_DATA``
when it is set on purpose. Everything else a test needs is in the clone:
photos in tests/data/, models fetched into var/models, the venvs.
Subprocesses are not watched here; the lint (tools/lint.py,
`check_paths_outside_clone`) refuses the paths they could be given.
"""
from __future__ import annotations

import os
import sys
import tempfile
import threading
from pathlib import Path

EVENTS = {"open", "os.listdir", "os.scandir", "os.chdir", "sqlite3.connect"}


def allowed_roots(env: dict | None = None) -> list[str]:
    env = os.environ if env is None else env
    roots = [tempfile.gettempdir()]
    home = Path.home()
    roots += [str(p) for p in (home.glob(".*") if home.is_dir() else ())]
    if env.get("ANJU_FACE_DATA"):
        roots.append(os.path.abspath(env["ANJU_FACE_DATA"]))
    return [os.path.realpath(r) for r in roots]


def is_outside(path: str, repo: str, allowed: list[str]) -> bool:
    """True for a path in the folder that holds the clone but not in the clone."""
    parent = os.path.dirname(repo)
    full = os.path.realpath(path)
    inside = lambda root: full == root or full.startswith(root.rstrip(os.sep) + os.sep)  # noqa: E731
    if not inside(parent) or inside(repo):
        return False
    return not any(inside(root) for root in allowed)


class OutsideReads:
    """Records paths outside the clone that the process touches."""

    def __init__(self, repo: Path, allowed: list[str] | None = None):
        self.repo = os.path.realpath(repo)
        self.allowed = allowed_roots() if allowed is None else allowed
        self.seen: list[str] = []
        self._lock = threading.Lock()
        self._busy = threading.local()

    def hook(self, event: str, args: tuple) -> None:
        if event not in EVENTS or not args or getattr(self._busy, "on", False):
            return
        path = args[0]
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, (str, os.PathLike)) or path in ("", ":memory:"):
            return
        self._busy.on = True  # realpath below must not re-enter the hook
        try:
            path = os.fspath(path)
            if path.startswith("file:"):
                path = path[5:].split("?", 1)[0]
            if is_outside(os.path.abspath(path), self.repo, self.allowed):
                with self._lock:
                    self.seen.append(path)
        finally:
            self._busy.on = False

    def take(self) -> list[str]:
        with self._lock:
            out, self.seen = self.seen, []
        return out

    def install(self) -> "OutsideReads":
        sys.addaudithook(self.hook)
        return self
