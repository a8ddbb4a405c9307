"""A scenario run's steps through the hub's visitor service (hub/visitors/,
docs/visitors.md, docs/scenarios.md): visits registered, decided and
watch-listed through `VisitorBook` as the HTTP routes call it, the pass's
codes kept for the `visitor` step and the expectations, and the timeline's
text for these steps with the visitor's personal data masked. Never prints
a code's digits or a full ID number."""
from simulator import scenario as scn
from simulator.clock import fmt_offset


class VisitSteps:
    """Mixed into simulator.runner.ScenarioRun: needs its hub, clock, t0, sc,
    say, out, visits, visit_passes, visit_qrs and step_errors."""

    def visit_codes(self, name, did):
        """(digits, valid_from) of the code the hub made for visit `name` at lock
        `did` (live or revoked since), or None."""
        return self.visit_passes.get(name, {}).get(did)

    def _note_pass(self, name):
        """Keep what the hub made for the visit's pass (also for after the run)."""
        rows = self.hub.store.query("SELECT device_id, digits, valid_from FROM visit_codes "
                                    "WHERE visit_id=?", (self.visits[name],))
        self.visit_passes[name] = {r[0]: (r[1], r[2]) for r in rows}
        book = self.hub.visitors.book
        if book.show(self.visits[name])["state"] == "approved":
            # kept: a gate reader's `qr` step shows it even after the pass is revoked
            self.visit_qrs[name] = book.pass_of(self.visits[name])["qr"]

    def visit_digits(self, name, did):
        found = self.visit_codes(name, did)
        return None if found is None else found[0]

    def visit_ident(self, name, did):
        """The identity the lock reports for that code (v:<slot>:<check>)."""
        from hub.visitors import passcode
        found = self.visit_codes(name, did)
        if found is None:
            return None
        check = passcode.parse(found[0])[0]
        return passcode.ident(int(found[1] - passcode.MP_EPOCH_OFFSET) // passcode.SLOT_S, check)

    def visit_step(self, action, value):
        """A visitor-service step, as the HTTP API takes it (hub/visitors/routes.py):
        a resident registers with a token of her flat, a clerk's account
        (its role, checked when the file was read) registers, decides or puts an
        ID number on the watch list. The hub refusing it fails the run."""
        from hub.visitors import VisitorError
        book = self.hub.visitors.book
        try:
            if action == "visit":
                body = scn.visit_body(value["spec"], self.t0)
                if value["by"] == "resident":
                    token = book.resident_token(body["flat"], "scenario")
                    flat = book.flat_of_token(token)
                    view = book.register(body, "resident:%s" % flat, flat)
                else:
                    view = book.register(body, "scenario:%s" % value["by"])
                self.visits[value["name"]] = view["id"]
                codes = book.pass_of(view["id"])["codes"] if view["state"] == "approved" else []
                self.say("visitors", "visit %s: %s (%s)%s" % (
                    value["name"], view["state"], view["id"][:8],
                    "".join(", code at %s" % c["device"] for c in codes)))
            elif action == "visit_decide":
                visit_id = self.visits[value["visit"]]
                if value["by"] == "resident":
                    flat = self.sc.visits[value["visit"]]["flat"]
                    view = book.decide(visit_id, value["action"], "resident:%s" % flat,
                                       value["note"], flat)
                else:
                    view = book.decide(visit_id, value["action"], "scenario:%s" % value["by"],
                                       value["note"])
                extra = ""
                if view["state"] == "approved":
                    extra = "".join(", code at %s valid %s .. %s%s" % (
                        c["device"], fmt_offset(c["valid_from"] - self.t0),
                        fmt_offset(c["valid_until"] - self.t0),
                        ", one-time" if c["one_time"] else "")
                        for c in book.pass_of(visit_id)["codes"])
                self.say("visitors", "visit %s: %s%s" % (value["visit"], view["state"], extra))
            else:
                flagged = book.watch_add(value["kind"], value["value"], "scenario:%s" % value["by"],
                                         value["note"])
                self.say("visitors", "watch list: %s added, %d visit(s) flagged"
                         % (value["kind"], len(flagged)))
            name = value.get("name") or value.get("visit")
            if name in self.visits:
                self._note_pass(name)
        except VisitorError as exc:
            what = "the hub refused %s (%s): %s" % (action, value.get("name") or
                                                    value.get("visit") or value.get("kind"), exc)
            self.out("FAIL  " + what)
            self.step_errors.append(what)
        self.hub.visitors.changed()
        sender = getattr(self.hub, "lock_sender", None)
        if sender is not None:
            sender.wake()

    def check_visit(self, kind, spec, received):
        """(held?, what) of a `visit` or `visit_record` expectation."""
        visit_id = self.visits.get(spec["what"])
        if kind == "visit":
            state = None if visit_id is None else self.hub.visitors.book.show(visit_id)["state"]
            return state == spec["state"], "visit %s: %s (want %s)" % (
                spec["what"], state, spec["state"])
        full = self.sc.visits[spec["what"]]["id_number"]
        docs = [doc for _, doc in received if doc.get("type") == "visit"
                and visit_id is not None and doc.get("id") == "visit-" + visit_id]
        masked = all((doc.get("visitor") or {}).get("id_number") != full for doc in docs)
        return (len(docs) == spec["count"] and masked,
                "visit record %s upstream: %d (want %d), ID number masked: %s" % (
                    spec["what"], len(docs), spec["count"], masked))


def step_value(step):
    """A step's value as the timeline prints it: a visitor's personal data masked."""
    from hub.visitors import pii
    v = step.value
    if step.action == "visit":
        spec = v["spec"]
        return "%s for %s by %s, %s, ID number %s, %s .. %s" % (
            v["name"], spec["flat"], v["by"], spec.get("entry", "single"),
            pii.mask("id_number", str(spec.get("id_number"))),
            fmt_offset(spec["from"]), fmt_offset(spec["until"]))
    if step.action == "visit_decide":
        return "%s %s by %s" % (v["action"], v["visit"], v["by"])
    if step.action == "visit_watch":
        return "%s %s by %s" % ("ID number" if v["kind"] == "id" else "plate",
                                pii.mask("id_number" if v["kind"] == "id" else "plate",
                                         str(v["value"])), v["by"])
    if step.action == "visitor" and isinstance(v, dict):
        return "visit %s" % v["visit"]
    return v
