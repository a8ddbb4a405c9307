"""A scenario run's gate readers and vehicle barriers (docs/scenarios.md,
docs/visitors.md): one simulated peer (simulator/readers.py) per reader of
the site's `visitors.readers`, the `plate`, `qr` and `reader_inject` steps
carried out through them, and the `gate` and `visitor_log` expectations.

Each step waits, bounded in real time, on a condition, never a sleep: a
report for the hub's answer to it, or for the hub to count it rejected; a
command injected on the reader's cmd topic for the reader to count it
ignored. The virtual clock does not move while a step waits. The timeline
never shows a full plate (hub.visitors.pii masks it as docs/visitors.md
says) nor a QR's text.
"""
import asyncio
import json
import os

from simulator import readers
from simulator import scenario_readers as rdr
from simulator.readers import ReaderPeer

ANSWER_TIMEOUT_S = 10.0


class ReaderSteps:
    """Mixed into simulator.runner.ScenarioRun: needs its hub, clock, sc, say,
    out, logins, frames, visits, visit_qrs and step_errors."""

    async def start_readers(self, host, port):
        self.reader_peers = {}
        self.reader_rejected = {}  # reader id -> {reason: reports the hub rejected}
        loop = asyncio.get_running_loop()
        site = self.sc.site
        for rid, reader in sorted(rdr.readers_of(site).items()):
            peer = ReaderPeer(reader, site.site_id, self.clock, host, port, self.logins(rid))
            await asyncio.to_thread(peer.start, loop)
            self.reader_peers[rid] = peer
            self.say(rid, "online (%s at %s, a simulated peer on the site broker)"
                     % (reader.kind, reader.entrance))

    def stop_readers(self):
        for peer in getattr(self, "reader_peers", {}).values():
            peer.stop()

    def _hub_rejected(self):
        link = getattr(self.hub.visitors, "readers", None)
        return dict(link.rejected) if link is not None else {}

    def _fail(self, what):
        self.out("FAIL  " + what)
        self.step_errors.append(what)

    async def reader_step(self, rid, action, value):
        peer = self.reader_peers[rid]
        link = self.hub.visitors.readers
        await link.wait_ready(ANSWER_TIMEOUT_S)  # after a hub restart it subscribes again
        inject = value.get("inject") if action == "reader_inject" else None
        if inject in rdr.COMMAND_INJECTS:
            await self._inject_command(peer, inject)
            return
        before = self._hub_rejected()
        if action == "plate":
            payload, genuine = peer.next_report("plate", value["plate"], value["direction"]), True
        elif action == "qr":
            token = self.visit_qrs.get(value["visit"])
            if token is None:
                self.say(rid, "visit %s has no pass: nothing scanned" % value["visit"])
                return
            payload, genuine = peer.next_report("qr", token, value["direction"]), True
        elif inject == "replayed":
            payload, genuine = peer.last_report, False
        else:
            last = json.loads(peer.last_report) if peer.last_report else {}
            kind = "plate" if peer.reader.kind == "barrier" else "qr"
            value_ = last.get("value", "粤A00000" if kind == "plate" else "AV1")
            if inject == "forged":
                payload = peer.forged_report(kind, value_)
            else:
                payload = peer.stale_report(kind, value_, rdr.STALE_S)
            genuine = False
        taken, ignored = len(peer.answers), dict(peer.ignored)
        await asyncio.to_thread(peer.publish, payload)

        def rejected():
            now = self._hub_rejected()
            return {r: n - before.get(r, 0) for r, n in now.items() if n > before.get(r, 0)}

        # the answer taken, the hub's rejection, or an answer the reader ignored
        held = await peer.wait(lambda: len(peer.answers) > taken or rejected()
                               or peer.ignored != ignored, ANSWER_TIMEOUT_S)
        for reason, n in rejected().items():
            mine = self.reader_rejected.setdefault(rid, {})
            mine[reason] = mine.get(reason, 0) + n
            self.say(rid, "the hub rejected the report (%s): no answer" % reason)
        if len(peer.answers) > taken:
            t, doc = peer.answers[-1]
            self.say(rid, "%s (%s), command #%d" % ("OPEN" if doc["open"] else "stays shut",
                                                    doc["reason"], doc["counter"]))
            if not genuine:
                self._fail("the hub answered a %s report at %s" % (inject, rid))
        elif peer.ignored != ignored:
            why = ", ".join(sorted(r for r, n in peer.ignored.items() if n > ignored.get(r, 0)))
            self.say(rid, "ignored the hub's answer (%s)" % why)
            if not genuine:
                self._fail("the hub answered a %s report at %s (the reader ignored it as %s)"
                           % (inject, rid, why))
        elif not held:
            self._fail("the hub neither answered nor rejected %s's %s report within %.0f s"
                       % (rid, inject or action, ANSWER_TIMEOUT_S))
        if genuine and not held:
            peer.pending = None

    async def _inject_command(self, peer, kind):
        """A command on the reader's cmd topic, published with the hub's login
        (its password stolen): with a made-up key, or the last genuine one again."""
        if kind == "replayed_command":
            payload = peer.last_command_payload
            if payload is None:
                self.say(peer.id, "no command taken yet: nothing to replay")
                return
        else:
            doc = {"reader": peer.id, "counter": peer.last_command + 1, "ref": peer.counter,
                   "at": int(self.clock.now()), "open": True, "reason": "ok", "valid_s": 10}
            doc["mac"] = readers.sign(os.urandom(32), readers.COMMAND_LABEL, doc)
            payload = json.dumps(doc).encode()
        before = dict(peer.ignored)
        taken = len(peer.answers)
        await asyncio.to_thread(self.frames.publish, peer.cmd_topic, payload)
        held = await peer.wait(lambda: peer.ignored != before or len(peer.answers) > taken,
                               ANSWER_TIMEOUT_S)
        if len(peer.answers) > taken:
            self._fail("%s acted on a %s" % (peer.id, kind))
        elif held:
            self.say(peer.id, "ignored the command (%s)" % ", ".join(
                sorted(r for r, n in peer.ignored.items() if n > before.get(r, 0))))
        else:
            self._fail("%s did not receive the %s within %.0f s" % (peer.id, kind,
                                                                   ANSWER_TIMEOUT_S))

    # ---- expectations -------------------------------------------------------------
    def check_gate(self, spec):
        rid = spec["what"]
        peer = self.reader_peers.get(rid)
        if "rejected" in spec:
            n = self.reader_rejected.get(rid, {}).get(spec["rejected"], 0)
            return n == spec["count"], "gate %s: reports rejected by the hub as %s: %d " \
                "(want %d)" % (rid, spec["rejected"], n, spec["count"])
        if "ignored" in spec:
            n = peer.ignored.get(spec["ignored"], 0) if peer is not None else 0
            return n == spec["count"], "gate %s: commands ignored as %s: %d (want %d)" % (
                rid, spec["ignored"], n, spec["count"])
        answers = [doc for _, doc in (peer.answers if peer is not None else [])
                   if ("open" not in spec or doc["open"] == spec["open"])
                   and ("reason" not in spec or doc["reason"] == spec["reason"])]
        if "direction" in spec:
            # the command does not repeat the direction: the run knows what it reported
            answers = [doc for doc in answers
                       if peer.directions.get(doc["ref"]) == spec["direction"]]
        filters = " ".join("%s=%s" % (k, str(spec[k]).lower() if k == "open" else spec[k])
                           for k in ("open", "reason", "direction") if k in spec)
        return len(answers) == spec["count"], "gate %s %s: %d answer(s) taken (want %d)" % (
            rid, filters or "all", len(answers), spec["count"])

    def check_visitor_log(self, spec):
        entries = [e for e in self.hub.store.access_log(spec["what"], limit=1_000_000)
                   if "reader" not in spec or e["payload"].get("reader") == spec["reader"]]
        return len(entries) == spec["count"], "visitor log %s%s: %d (want %d)" % (
            spec["what"], " at " + spec["reader"] if "reader" in spec else "", len(entries),
            spec["count"])


def step_value(step):
    """A reader step as the timeline prints it: the plate masked, no QR text."""
    from hub.visitors import pii
    v = step.value
    if step.action == "plate":
        return "%s, %s" % (pii.mask("plate", v["plate"]), v["direction"])
    if step.action == "qr":
        return "visit %s's pass, %s" % (v["visit"], v["direction"])
    return v["inject"]
