"""Shared fixtures: private Mosquitto brokers on free loopback ports.

`sys.path` (repo root and `firmware/`) is set by pyproject's pytest options.
No test may use a system broker or the internet, or read a file beside the
clone (tests/outside_reads.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from host_tools.mosquitto import Mosquitto
from tests.outside_reads import OutsideReads

REPO = Path(__file__).resolve().parents[1]
_outside = OutsideReads(REPO).install()


@pytest.fixture(autouse=True)
def _reads_stay_in_the_clone() -> Iterator[None]:
    """Fails the test that read a file beside the clone (tests/outside_reads.py)."""
    _outside.take()
    yield
    seen = _outside.take()
    if seen:
        pytest.fail("read outside the repository (a clone does not have it): %s"
                    % ", ".join(sorted(set(seen))[:5]), pytrace=False)


@pytest.fixture
def make_broker(tmp_path: Path) -> Iterator[Callable[..., Mosquitto]]:
    """Factory: ``make_broker(name="x", persistence=True)`` -> a started broker.

    Every broker it made is killed on teardown, whatever the test did to it.
    """
    made: list[Mosquitto] = []

    def factory(name: str = "broker", **kwargs: object) -> Mosquitto:
        broker = Mosquitto(tmp_path / f"mosquitto-{name}-{len(made)}", name=name, **kwargs)
        made.append(broker)
        return broker.start()

    yield factory
    for broker in made:
        broker.kill()


@pytest.fixture
def make_site_broker(tmp_path: Path) -> Iterator[Callable[..., Mosquitto]]:
    """Factory: ``make_site_broker(site)`` -> a started broker running what
    `anju broker config` generates for `site` (no anonymous clients, a
    password per device and for the hub, the ACL); ``broker.login(user)``
    gives a client's credentials. Killed on teardown."""
    made: list[Mosquitto] = []

    def factory(site, name: str = "site", **kwargs: object) -> Mosquitto:
        broker = Mosquitto.for_site(tmp_path / f"mosquitto-{name}-{len(made)}", site, name=name,
                                    **kwargs)
        made.append(broker)
        return broker.start()

    yield factory
    for broker in made:
        broker.kill()


@pytest.fixture
def broker(make_broker: Callable[..., Mosquitto]) -> Mosquitto:
    """The site broker devices and the hub talk to (no persistence)."""
    return make_broker("site")


@pytest.fixture
def upstream_broker(make_broker: Callable[..., Mosquitto]) -> Mosquitto:
    """A broker standing in for the city-level platform the hub forwards alarms to."""
    return make_broker("upstream")
