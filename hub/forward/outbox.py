"""The outbox's delivery core, shared by every forwarding target (the upstream
MQTT 5 broker in hub/forward/upstream.py, the HTTPS webhook in
hub/forward/webhook.py).

`OutboxDrainer` keeps up to
`window` documents in flight, at most ONE per alarm: version n+1 of an alarm
is sent only after the target acknowledged version n, while different alarms
proceed side by side; fire alarms (higher priority) are offered first. A row
leaves the outbox only after the target acknowledged it (MQTT PUBACK, HTTP 2xx),
and that delete is committed before the next version of the same alarm is
sent. A failed send waits with exponential backoff and jitter (per alarm,
capped); a document the target refuses for good (webhook 4xx) goes to the
`dead_letters` table and is logged as an error: it is never dropped silently.

A crash between acknowledgement and delete sends the same (id, seq) again;
the platform de-duplicates on it (docs/forwarding.md). This module never
deletes a row that was not acknowledged and never logs secrets or payloads.
"""
import asyncio
import logging
import random

log = logging.getLogger("anju.hub.forwarder")

WINDOW = 50
DELIVERED, RETRY, DEAD = "delivered", "retry", "dead"


class Backoff:
    """Exponential backoff with full jitter: attempt n waits a random time in
    [base*2**n / 2, base*2**n], never more than `cap`. Pure; `rng` injected."""

    def __init__(self, base=0.5, cap=60.0, rng=None):
        self.base = base
        self.cap = cap
        self.rng = rng or random.Random()

    def delay(self, attempt):
        top = min(self.cap, self.base * (2 ** min(attempt, 32)))
        return top / 2 + self.rng.random() * top / 2


class Wakeups:
    """One asyncio.Event per target behind the Event interface the hub uses:
    `set()` wakes every target, `is_set()` is true while any has not run yet."""

    def __init__(self):
        self._events = {}

    def event(self, target):
        return self._events.setdefault(target, asyncio.Event())

    def set(self):
        for e in self._events.values():
            e.set()

    def is_set(self):
        return any(e.is_set() for e in self._events.values())

    def clear(self):
        for e in self._events.values():
            e.clear()


class OutboxDrainer:
    """Drains one target's outbox rows. Subclasses provide `send(row)` →
    (DELIVERED | RETRY | DEAD, reason) and `ready()`."""

    target = "mqtt"

    def __init__(self, store, wakeup, window=WINDOW, backoff=None, now=None, sleep=None):
        self.store = store
        if isinstance(wakeup, Wakeups):
            wakeup = wakeup.event(self.target)
        self.wakeup = wakeup
        self.window = window
        self.backoff = backoff or Backoff()
        self._now = now  # monotonic seconds; the loop's clock unless injected
        self._sleep = sleep or asyncio.sleep
        self.delivered = 0
        self.retried = 0
        self.dead = 0
        self.busy = False
        self._not_before = {}  # alarm id -> earliest time of its next attempt

    def ready(self):
        return True

    async def send(self, row):
        raise NotImplementedError

    def idle(self):
        return not self.busy and (not self.ready() or self.store.outbox_depth(self.target) == 0)

    def now(self):
        return self._now() if self._now is not None else asyncio.get_running_loop().time()

    async def run(self):
        while True:
            self.busy = False
            await self.wakeup.wait()
            self.wakeup.clear()
            self.busy = True
            await self.drain()

    async def drain(self):
        """Send until this target's outbox is empty (or the target is not ready
        and nothing is in flight)."""
        inflight = {}  # task -> row
        try:
            while True:
                if self.ready() and len(inflight) < self.window:
                    self._fill(inflight)
                if not inflight:
                    if not self.ready() or self.store.outbox_depth(self.target) == 0:
                        return
                    # every waiting alarm is backing off: sleep until the first is due
                    due = min(self._not_before.values(), default=self.now())
                    waiters = [asyncio.ensure_future(self.wakeup.wait()),
                               asyncio.ensure_future(self._sleep(max(0.0, due - self.now())))]
                    try:
                        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        for w in waiters:
                            w.cancel()
                    self.wakeup.clear()
                    continue
                done, _ = await asyncio.wait(list(inflight), return_when=asyncio.FIRST_COMPLETED)
                self._settle([(inflight.pop(t), t) for t in done])
        finally:
            for t in inflight:
                t.cancel()

    def _fill(self, inflight):
        busy = {row[1] for row in inflight.values()}
        now = self.now()
        for row in self.store.outbox_heads(self.target, self.window + len(busy)):
            if len(inflight) >= self.window:
                break
            alarm_id = row[1]
            if alarm_id in busy or self._not_before.get(alarm_id, now) > now:
                continue
            busy.add(alarm_id)
            inflight[asyncio.ensure_future(self.send(row))] = row

    def _settle(self, finished):
        """One transaction for every send that finished: delete, count or dead-letter."""
        now = self.now()
        with self.store.transaction() as tx:
            for row, task in finished:
                if task.cancelled():
                    continue
                exc = task.exception()
                outcome, reason = (RETRY, "%s: %s" % (type(exc).__name__, exc)) if exc else \
                    task.result()
                row_id, alarm_id, seq = row[0], row[1], row[2]
                if outcome == DELIVERED:
                    tx.outbox_delivered(row_id)
                    self._not_before.pop(alarm_id, None)
                    self.delivered += 1
                elif outcome == DEAD:
                    tx.outbox_dead_letter(row_id, reason, now)
                    self._not_before.pop(alarm_id, None)
                    self.dead += 1
                    log.error("alarm refused by %s: kept as a dead letter" % self.target,
                              extra={"alarm": alarm_id, "seq": seq, "reason": reason})
                else:
                    tx.outbox_attempt(row_id)
                    self.retried += 1
                    wait = self.backoff.delay(row[5])
                    self._not_before[alarm_id] = now + wait
                    log.warning("forwarding failed; retrying", extra={
                        "target": self.target, "alarm": alarm_id, "seq": seq, "reason": reason,
                        "retry_in_s": round(wait, 2)})
