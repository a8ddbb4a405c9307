"""Fixtures of the console's browser tests (tests/console/consolekit.py)."""
import pytest

from tests.console import consolekit


@pytest.fixture(scope="module")
def driver():
    made = consolekit.browser()
    try:
        yield made
    finally:
        made.quit()


@pytest.fixture
def console(tmp_path, make_broker, driver):
    hub = consolekit.HubThread(tmp_path / "hub.db", make_broker("site"), make_broker("upstream"))
    driver.set_window_size(1280, 900)
    try:
        yield hub
    finally:
        driver.get("about:blank")
        hub.stop()


@pytest.fixture
def plan_console(tmp_path, make_broker, driver):
    """A hub running the plan's site (consolekit.PLAN_YAML)."""
    hub = consolekit.HubThread(tmp_path / "hub.db", make_broker("site"), make_broker("upstream"),
                               consolekit.plan_site())
    driver.set_window_size(1280, 900)
    try:
        yield hub
    finally:
        driver.get("about:blank")
        hub.stop()


@pytest.fixture
def registry_console(tmp_path, make_broker, driver):
    """A hub in registry mode, its registry made from the plan's site."""
    hub = consolekit.HubThread(tmp_path / "hub.db", make_broker("site"), make_broker("upstream"),
                               registry_yaml=consolekit.REGISTRY_YAML)
    driver.set_window_size(1280, 900)
    try:
        yield hub
    finally:
        driver.get("about:blank")
        hub.stop()
