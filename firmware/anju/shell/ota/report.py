"""The report half of the OTA exchange (docs/ota.md, "Offer and transfer").

`Reporter.exchange(client)` reports what the device runs (FW_REPORT on
`ota/up`), and once the hub acknowledged that report it confirms a trial
(the app has reached the hub) and forgets the failures it reported; it
returns the hub's offer (the signed manifest, not yet checked) or None.
anju.shell.ota.fetch.Updater builds the fetch on it. This module imports
nothing of the verifier (anju.ota.manifest, ed25519, sha512), so an app
whose own tables leave no room for it (the smart lock) can still report,
confirm and hear an offer; it must never act on the offer's bytes.
"""
from anju import frame
from anju.ota import slots, transfer
from anju.shell.ota.store import SlotStore


def version(text):
    """(major, minor, patch) of a version slots.decode already checked."""
    return tuple(int(p) for p in text.split("."))


class Reporter:
    def __init__(self, cfg, next_counter, now, feed=None, battery_percent=None):
        self.cfg = cfg
        self.next_counter = next_counter  # the app's counter: one space per device
        self.battery_percent = battery_percent or (lambda: 100)
        self.now = now
        self.feed = feed or (lambda: None)  # the watchdog
        self.device_id = cfg.device_id.encode()
        self.slots = SlotStore("")
        self.confirmed = False
        self.inbox = []
        self._other = None

    # ---- messages -------------------------------------------------------------
    def _on_message(self, topic, msg):
        if not bytes(topic).endswith(b"/ota/down"):
            if self._other is not None:
                self._other(topic, msg)  # a hub command on the same session goes to the app
            return
        if len(self.inbox) < 8:
            self.inbox.append(bytes(msg))

    def _publish(self, client, mtype, body):
        counter = self.next_counter()
        f = frame.encode(self.cfg.frame_key, self.device_id, mtype, counter, self.now(), body)
        client.publish(self.cfg.topic("ota/up"), f, qos=1)
        return counter

    def _wait(self, client, match):
        """The first message `match(parsed)` accepts, waiting at most the
        broker timeout for each one that arrives; None if none came."""
        for _ in range(16):
            while self.inbox:
                msg = self.inbox.pop(0)
                try:
                    parsed = transfer.parse_down(msg)
                except transfer.TransferError:
                    continue
                if match(parsed):
                    return parsed
            self.feed()
            client.wait_msg(self.cfg.mqtt_timeout_ms)  # OSError when nothing came
        return None

    def report(self, client, state, status=transfer.IDLE, percent=0, wait=True):
        """FW_REPORT; with `wait`, True once the hub acknowledged it."""
        slot = state["trial"] or state["active"]
        fails = [(version(f["version"]), transfer.failure_code(f["reason"]))
                 for f in state["failed"]]
        body = transfer.report_body(version(state["versions"][slot]), slot,
                                    state["trial"] is not None, status, percent, fails)
        counter = self._publish(client, transfer.T_FW_REPORT, body)
        if not wait:
            return False
        tag = transfer.ack_tag(self.cfg.frame_key, self.device_id, counter)
        ack = self._wait(client, lambda p: p[0] == "ack" and p[1] == counter and p[2] == tag)
        return ack is not None

    # ---- the exchange ---------------------------------------------------------
    def exchange(self, client):
        """Run on a connected client; OSError passes to the caller (the link).
        The client's own callback keeps every message not on ota/down.
        Returns the offered manifest (bytes) or None."""
        state = slots.load(self.slots)
        if state is None or self.cfg.release_pubkey is None:
            return None  # not deployed with slots, or no release key: takes no update
        self._other = client._cb
        client.set_callback(self._on_message)
        try:
            return self._exchange(client, state)
        finally:
            client.set_callback(self._other)
            self.inbox = []

    def _exchange(self, client, state):
        state = self.settle(client, state)
        if state is None:
            return None
        offer = self._wait(client, lambda p: p[0] in ("offer", "none"))
        if offer is None or offer[0] == "none":
            return None
        if self.battery_percent() < self.cfg.ota_min_battery_percent:
            self.report(client, state, transfer.BATTERY_LOW, 0, wait=False)
            return None  # asked again at the next report
        return self.offered(client, state, offer[1])

    def settle(self, client, state):
        """Report; after the hub's ack confirm a trial and forget the reported
        failures. The state after it, or None if the hub did not answer."""
        client.subscribe(self.cfg.topic("ota/down"), qos=1)
        if not self.report(client, state):
            return None  # the hub did not answer: no confirm, no offer
        if state["trial"] is not None:
            from anju.shell.ota import boot
            state = boot.confirm()
            self.confirmed = True
            self.report(client, state, wait=False)  # the hub sees the new version at once
        if state["failed"]:
            from anju.shell.ota import boot
            boot.reported(len(state["failed"]))
            state = slots.load(self.slots)
        return state

    def offered(self, client, state, blob):
        """What to do with an offer: here, hand it to the caller."""
        return blob
