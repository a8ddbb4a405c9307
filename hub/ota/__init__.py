"""Over-the-air updates from the hub (docs/ota.md, "Offer and transfer").

The operator publishes a release that `anju release build` signed; the hub
checks its signature and files again (it never holds the release key),
offers it to the devices the operator named inside the operator's window,
and serves its files in chunks over MQTT. What each device runs comes from
its authenticated reports.

    wire      the OTA frames and messages, pure
    plan      windows and the offer decision, pure
    release   loading and checking a release directory
    book      the OTA database: releases, targets, what devices run
    server    the component: the MQTT exchange with the devices
    api       the HTTP routes behind `anju fleet`

Exceptions: OtaError (bad input; its message names the field) is the root.
"""


class OtaError(ValueError):
    """An OTA request or release that cannot be taken; str(exc) says why."""
