"""Console benchmark: the property-office console in Debian's headless
Chromium against a running hub (real Mosquitto brokers, the HTTP API, the
live alarm stream), as tests/console runs it.

  console_alarm_visible_*_ms   from an alarm raised in the hub's alarm book
                               (as a rule raises it) to its row in the page's
                               list, over ALARMS alarms 150 ms apart: the hub's
                               clock at the transition against the browser's
                               Date.now() when the row is added (one machine,
                               one clock)
  console_first_load_*         the login page's first load: bytes transferred
                               (document and every file it fetched) and the
                               time until the page says it is ready

Reference: the issue's target, p99 < 1,000 ms (aim < 200 ms).

    python -m bench console
"""
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.hub_bench import pct  # noqa: E402

ALARMS = 50
GAP_S = 0.15
TARGET_MS = 1000.0

WATCH_ROWS = """
window.__seen = {};
new MutationObserver(function () {
  document.querySelectorAll('#alarm-list tr[data-alarm-id]').forEach(function (r) {
    var id = r.getAttribute('data-alarm-id');
    if (!(id in window.__seen)) window.__seen[id] = Date.now();
  });
}).observe(document.getElementById('alarm-list'), {childList: true, subtree: true});
"""

LOAD_FIGURES = """
var nav = performance.getEntriesByType('navigation')[0];
var bytes = nav.transferSize;
performance.getEntriesByType('resource').forEach(function (e) { bytes += e.transferSize; });
return [bytes, nav.domInteractive, performance.getEntriesByType('resource').length];
"""




def measure(alarms=ALARMS):
    from selenium.webdriver.common.by import By

    from host_tools.mosquitto import Mosquitto
    from tests.console import consolekit

    with tempfile.TemporaryDirectory(prefix="anju-console-bench-") as tmp:
        tmp = Path(tmp)
        with Mosquitto(tmp / "site", name="site").start() as site_broker, \
                Mosquitto(tmp / "up", name="upstream").start() as upstream:
            hub = consolekit.HubThread(tmp / "hub.db", site_broker, upstream)
            driver = consolekit.browser()
            try:
                hub.account("bench", "staff")
                t0 = time.perf_counter()
                driver.get(hub.base + "/")
                consolekit.wait(driver, lambda d: d.find_element(By.TAG_NAME, "body")
                                .get_attribute("data-ready") == "1", what="the console")
                ready_ms = (time.perf_counter() - t0) * 1000
                load_bytes, interactive_ms, files = driver.execute_script(LOAD_FIGURES)
                driver.find_element(By.ID, "login-account").send_keys("bench")
                driver.find_element(By.ID, "login-password").send_keys(consolekit.PASSWORD)
                driver.find_element(By.ID, "login-submit").click()
                consolekit.wait(driver, lambda d: d.find_element(By.ID, "live-status")
                                .get_attribute("data-status") == "live", what="the live stream")
                driver.execute_script(WATCH_ROWS)
                raised = []
                for i in range(alarms):
                    hub.raise_alarm("bench-%d" % i)
                    threading.Event().wait(GAP_S)
                consolekit.wait(driver, lambda d: len(d.execute_script(
                    "return Object.keys(window.__seen)")) >= alarms, timeout=30,
                    what="every alarm in the list")
                seen = driver.execute_script("return window.__seen")
                for a in hub.alarms():
                    at = hub.transitions(a["id"])[0]["at"]
                    raised.append((seen[a["id"]] / 1000.0 - at) * 1000)
            finally:
                driver.quit()
                hub.stop()
    return {"visible_ms": raised, "ready_ms": ready_ms, "interactive_ms": interactive_ms,
            "bytes": load_bytes, "files": files}


def run(results):
    m = measure()
    vis = m["visible_ms"]
    r = {"console_alarm_visible_p50_ms": round(pct(vis, 50), 1),
         "console_alarm_visible_p99_ms": round(pct(vis, 99), 1),
         "console_alarm_visible_max_ms": round(max(vis), 1),
         "console_alarms": len(vis),
         "console_first_load_bytes": m["bytes"],
         "console_first_load_files": m["files"],
         "console_first_load_interactive_ms": round(m["interactive_ms"], 1),
         "console_first_load_ready_ms": round(m["ready_ms"], 1)}
    print("console in headless Chromium, %d alarms %.0f ms apart" % (len(vis), GAP_S * 1000))
    for k in sorted(r):
        print("  %-45s %s" % (k, r[k]))
    ratio = r["console_alarm_visible_p99_ms"] / TARGET_MS
    r["console_alarm_visible_ratio_to_1s"] = round(ratio, 3)
    print("  alarm raised -> visible p99 %.1f ms; target 1,000 ms: ratio %.2f, %s (aim 200 ms: %s)"
          % (r["console_alarm_visible_p99_ms"], ratio, "met" if ratio < 1 else "NOT met",
             "met" if r["console_alarm_visible_p99_ms"] < 200 else "not met"))
    results.update(r)


if __name__ == "__main__":
    res = {}
    run(res)
