"""Stage 1 of the pipeline — ingest: the transports that bring device frames in.

* `mqtt` — the site broker: a paho subscriber in a thread or in a receiver
  process of its own; every PUBACK waits until the frame's batch is committed.
* `ble` — BTHome v2 advertisements through bleak (BlueZ on a Pi, the virtual
  radio in the simulator), decoded by `bthome-ble`.

Ingest hands raw frames to verification with their transport and arrival time.
It never decides whether a frame is genuine, never writes the store and never
acknowledges a frame before the store has committed it.
"""
