"""Smart-lock core (docs/smart_lock.md): pure modules, no hardware.

- `wire`: device -> hub frame bodies (0x20-0x25), hub -> lock commands
  (0x28-0x2F) verified and decoded with range checks, the key derivations;
- `users`: the user and credential table in fixed-size records;
- `keys`: keypad entry (keys in, a finished PIN or programming entry out);
- `visitor`: visitor codes checked offline and the blocked list of used and
  revoked codes (imported at the first code, docs/visitors.md);
- `decide`: the access decision and wrong-code lockout, a state machine;
- `control`: a verified command applied to the table, settings and clock;
- `bolt`: bolt and door supervision (motor runs, stall and reverse, forced
  opening, mechanical key, auto-relock, ajar), a state machine;
- `hubside`: command bodies and phone-key wrapping as the hub builds them
  (tests, vectors, simulator; the lock never imports it).

Errors: a command that must not be accepted raises `anju.frame.FrameError`
(its `reason` is what the lock counts); a table file that does not load raises
`users.TableError`; bad arguments to an encoder raise ValueError. None of these
modules imports `machine`, `network` or `time`, and none logs a key, a PIN or
a digest.
"""
