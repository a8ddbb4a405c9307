"""Stage 5 of the pipeline — alarms: what the rules raise, and what people do
with it.

* `documents` — the upstream alarm document (stable id, severity, place,
  evidence) and its versions;
* `alarmbook` — one open alarm per cause; raising, updating and closing;
* `lifecycle` — raised → dispatched → acknowledged → resolved, who and when;
* `commands` — the platform's and the console's lifecycle commands (MQTT and
  HTTP), idempotent, one implementation for every path.

Every change to an alarm is written to the store with its outbox rows in the
same transaction. This stage never sends anything itself (the outbox does)
and never changes an alarm without an actor.
"""
