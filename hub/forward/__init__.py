"""Stage 6 of the pipeline — forward: the outbox and everything that leaves the
hub.

* `outbox` — the delivery core: in-flight window, per-alarm order, backoff,
  dead letters;
* `upstream` — the platform's MQTT 5 broker (QoS 1, TLS); `webhook` — an
  HTTPS webhook (HMAC-signed); `targets` — builds the site's targets;
* `discovery` — Home Assistant MQTT discovery and state on the site broker;
* `interconnect` — authenticated commands to smoke sensors of the same
  flat or building.

A row leaves the outbox only after its target acknowledged it. Forwarding
never drops a document silently, never sends an alarm as two different ones
and never logs a payload or a secret.
"""
