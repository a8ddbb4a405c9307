"""`make run`'s demo (scenarios/demo.yaml) in a real Chromium: its plan is the
scenario's (two placed buildings), and the simulated responders - whose
positions the scenario reports through the site broker with each responder's
own login, on the virtual clock - are on the plan and move."""
import asyncio
import re
import threading
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from simulator.runner import run_scenario
from tests.console.consolekit import wait
from tests.console.test_console_plan import open_plan, shot

pytestmark = pytest.mark.broker
DEMO = Path(__file__).resolve().parents[2] / "scenarios" / "demo.yaml"
MARKER = '#plan-svg g.responder[data-responder="p-zhang"]'


class DemoThread:
    """`anju demo` (run_scenario with the console) on its own loop in a thread."""

    def __init__(self, workdir):
        self.lines = []
        self.loop = asyncio.new_event_loop()
        self.running = None
        ready = threading.Event()

        def main():
            asyncio.set_event_loop(self.loop)
            self.running = self.loop.create_task(run_scenario(
                DEMO, out=self.lines.append, workdir=workdir, pace=1.0,
                console={"host": "127.0.0.1", "port": 0}))
            ready.set()
            try:
                self.loop.run_until_complete(self.running)
            except (asyncio.CancelledError, Exception):  # the result is the test's business
                pass
            finally:
                self.loop.close()

        self.thread = threading.Thread(target=main, name="demo", daemon=True)
        self.thread.start()
        ready.wait(10)

    def login(self, timeout=60.0):
        found = []

        def printed(_):
            found[:] = [m for m in (re.search(r"console: (http://\S+)  log in as (\S+) / (\S+)",
                                              line) for line in list(self.lines)) if m]
            return found or self.running.done()
        from tests.console.consolekit import wait_until
        wait_until(lambda: printed(None), timeout, what="the demo's console line")
        assert found, self.lines[:20]
        return found[0].group(1).rstrip("/"), found[0].group(2), found[0].group(3)

    def stop(self):
        if not self.running.done():
            self.loop.call_soon_threadsafe(self.running.cancel)
        self.thread.join(60)


def test_the_demo_plan_shows_its_buildings_and_a_moving_responder(tmp_path, driver):
    demo = DemoThread(tmp_path / "demo")
    try:
        base, account, password = demo.login()
        driver.get(base + "/")
        wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready")
             == "1", what="the console")
        driver.find_element(By.ID, "login-account").send_keys(account)
        driver.find_element(By.ID, "login-password").send_keys(password)
        driver.find_element(By.ID, "login-submit").click()
        wait(driver, lambda d: d.find_element(By.ID, "live-status").get_attribute("data-status")
             == "live", 10, what="the live stream")
        open_plan(driver)
        # the scenario's plan, not the automatic grid
        assert not driver.find_element(By.ID, "plan-auto").is_displayed()
        shapes = {g.get_attribute("data-building"): g.find_element(By.CSS_SELECTOR, "polygon")
                  .get_attribute("points")
                  for g in driver.find_elements(By.CSS_SELECTOR, "#plan-svg g.bld")}
        assert shapes["b1"] == "80,90 420,90 420,330 80,330"
        assert shapes["b2"] == "560,110 920,110 920,410 560,410"
        # the officer appears, then moves (a walk reports every 5 virtual minutes)
        wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, MARKER), 30,
             what="the officer on the plan")
        first = driver.execute_script(
            "return document.querySelector(arguments[0]).getAttribute('transform');", MARKER)
        seen = {first}

        def moved(d):
            seen.add(d.execute_script("const m = document.querySelector(arguments[0]);"
                                      "return m && m.getAttribute('transform');", MARKER))
            return len(seen - {None}) >= 3
        wait(driver, moved, 30, what="the officer to move twice")
        shot(driver, "console-demo-plan.png")
        assert "Officer Zhang" in driver.find_element(By.ID, "responder-list").text
        assert any("p-zhang" in line and "position" in line for line in demo.lines)
    finally:
        driver.get("about:blank")
        demo.stop()
