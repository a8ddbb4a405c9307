"""Shared fixtures: private Mosquitto brokers on free loopback ports.

`sys.path` (repo root and `firmware/`) is set by pyproject's pytest options.
No test may use a system broker or the internet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from host_tools.mosquitto import Mosquitto


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
def broker(make_broker: Callable[..., Mosquitto]) -> Mosquitto:
    """The site broker devices and the hub talk to (no persistence)."""
    return make_broker("site")


@pytest.fixture
def upstream_broker(make_broker: Callable[..., Mosquitto]) -> Mosquitto:
    """A broker standing in for the city-level platform the hub forwards alarms to."""
    return make_broker("upstream")
