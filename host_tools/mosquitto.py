"""Private Mosquitto brokers for tests, `anju sim run` and `anju demo`.

Each ``Mosquitto`` runs its own ``mosquitto`` process on a free loopback port
with a generated config in its own directory, so tests never touch a system
broker and can stop, kill and restart the broker on the same port to rehearse
outages. It must never bind anything but 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

HOST = "127.0.0.1"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0


class BrokerError(RuntimeError):
    """The test broker could not be found, started or stopped."""


def find_mosquitto() -> str:
    """Path of the mosquitto binary: PATH first, then Debian's /usr/sbin."""
    found = shutil.which("mosquitto")
    if found:
        return found
    if os.access("/usr/sbin/mosquitto", os.X_OK):
        return "/usr/sbin/mosquitto"
    raise BrokerError(
        "mosquitto not found on PATH or at /usr/sbin/mosquitto; "
        "run `make venv` (installs it with apt-get) or `apt-get install mosquitto`"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class Mosquitto:
    """One private broker process; restartable on the same port.

    ``persistence=True`` keeps retained messages, persistent sessions and
    queued QoS 1/2 messages across ``stop()``/``restart()`` (Mosquitto writes
    its database on a clean shutdown; ``kill()`` is a crash and loses what was
    not yet saved unless ``autosave_interval`` says otherwise).
    ``log_types``: Mosquitto's `log_type` lines; "all" logs every packet (what
    a test reads when it fails), benchmarks log less, as a site broker does.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        persistence: bool = False,
        extra_config: tuple[str, ...] | list[str] = (),
        name: str = "broker",
        log_types: tuple[str, ...] = ("all",),
        include_dir: Path | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.host = HOST
        self.port = port if port is not None else free_port()
        self.persistence = persistence
        self.extra_config = tuple(extra_config)
        self.log_types = tuple(log_types)
        # a directory made by `anju broker config` (host_tools/broker.py): its
        # mosquitto.conf brings the listener, logins, ACL, persistence and limits
        self.include_dir = Path(include_dir) if include_dir is not None else None
        self.config_path = self.workdir / "mosquitto.conf"
        self.log_path = self.workdir / "mosquitto.log"
        self.stderr_path = self.workdir / "mosquitto.stderr"
        self.persistence_dir = self.workdir / "data"
        self._proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.passwords: dict[str, str] = {}  # user -> password (for_site); {}: anonymous

    @classmethod
    def for_site(cls, workdir: Path, site, *, name: str = "site", port: int | None = None,
                 extra_devices: tuple[str, ...] = ()) -> "Mosquitto":
        """A broker (not started) running what `anju broker config` makes for
        `site` (host_tools/broker.py): no anonymous clients, a password per
        device and for the hub, the ACL, persistence. `passwords` holds the
        clear-text logins for the test's clients."""
        from host_tools import broker as broker_config
        workdir = Path(workdir)
        port = port if port is not None else free_port()
        data = workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        _, passwords = broker_config.generate(site, workdir / "config", listen=(HOST, port),
                                              persistence_dir=data, extra_devices=extra_devices)
        broker = cls(workdir, port=port, name=name, include_dir=workdir / "config")
        broker.persistence_dir = data
        broker.passwords = passwords
        return broker

    def login(self, user: str) -> dict[str, str]:
        """{"username", "password"} of `user` on this broker ({} if it is
        anonymous or has no account for `user`, e.g. a BLE device)."""
        if user not in self.passwords:
            return {}
        return {"username": user, "password": self.passwords[user]}

    # -- config -----------------------------------------------------------
    def config_text(self) -> str:
        if self.include_dir is not None:
            return self._included_config_text()
        lines = [
            f"# generated for test broker {self.name}",
            f"listener {self.port} {HOST}",
            "allow_anonymous true",
            f"log_dest file {self.log_path}",
            *("log_type %s" % t for t in self.log_types),
            "connection_messages true",
            # Never drop QoS 1 messages queued for a persistent session (the
            # default limit of 1000 silently discards frames the device was
            # already told were delivered), and let a subscriber have enough
            # in flight for the hub to commit frames in batches.
            "max_queued_messages 0",
            "max_inflight_messages 1000",
        ]
        if os.geteuid() == 0:
            # Mosquitto drops root to user "mosquitto", who cannot write our tmp dir.
            lines.append("user root")
        if self.persistence:
            self.persistence_dir.mkdir(exist_ok=True)
            lines += [
                "persistence true",
                f"persistence_location {self.persistence_dir}/",
                "persistence_file mosquitto.db",
            ]
        else:
            lines.append("persistence false")
        lines += list(self.extra_config)
        return "\n".join(lines) + "\n"

    def _included_config_text(self) -> str:
        lines = [
            f"# test broker {self.name}: the generated configuration in {self.include_dir}",
            f"log_dest file {self.log_path}",
            *("log_type %s" % t for t in self.log_types),
            "connection_messages true",
        ]
        if os.geteuid() == 0:
            lines.append("user root")
        lines += list(self.extra_config)
        lines.append(f"include_dir {self.include_dir}")
        return "\n".join(lines) + "\n"

    # -- lifecycle ----------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self, timeout: float = START_TIMEOUT_S) -> "Mosquitto":
        if self.running:
            raise BrokerError(f"{self.name} is already running on port {self.port}")
        self.config_path.write_text(self.config_text(), encoding="utf-8")
        stderr = open(self.stderr_path, "ab")  # the child keeps its own copy of the fd
        try:
            self._proc = subprocess.Popen(
                [find_mosquitto(), "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,
            )
        finally:
            stderr.close()
        self.starts += 1
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                raise BrokerError(
                    f"{self.name}: mosquitto exited with code {code} before accepting "
                    f"connections on {HOST}:{self.port}\n{self.log_tail()}"
                )
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.02)
        self.kill()
        raise BrokerError(
            f"{self.name}: mosquitto did not accept connections on {HOST}:{self.port} "
            f"within {timeout:.1f}s\n{self.log_tail()}"
        )

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Clean shutdown (SIGTERM): Mosquitto saves its persistence database."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=timeout)
                self._proc = None
                raise BrokerError(f"{self.name}: mosquitto ignored SIGTERM for {timeout}s\n{self.log_tail()}")
        self._proc = None

    def kill(self) -> None:
        """Crash (SIGKILL): nothing is saved."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=STOP_TIMEOUT_S)
        self._proc = None

    def restart(self, *, crash: bool = False, down_for: float = 0.0) -> None:
        """Stop (or kill) and start again on the same port."""
        if crash:
            self.kill()
        else:
            self.stop()
        if down_for:
            time.sleep(down_for)
        self.start()

    # -- helpers -------------------------------------------------------------
    def log_tail(self, lines: int = 30) -> str:
        parts = []
        for path in (self.stderr_path, self.log_path):
            if path.exists():
                text = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path.name} (last {len(text)} lines) ---\n" + "\n".join(text))
        return "\n".join(parts) if parts else "(no broker output)"

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def __enter__(self) -> "Mosquitto":
        return self.start() if not self.running else self

    def __exit__(self, *exc_info: object) -> None:
        self.kill()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Mosquitto {self.name} {HOST}:{self.port} {state}>"
