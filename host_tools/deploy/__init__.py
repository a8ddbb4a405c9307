"""`anju deploy` and `anju provision`: the app, its runtime and the device's
configuration onto a board running MicroPython, over its raw REPL
(docs/flashing.md).

    plan.py       what to copy: the .mpy version check, the files that differ (pure)
    link.py       the board's raw REPL through mpremote's SerialTransport: list,
                  hash, write (temp file + rename), soft reset
    heard.py      waiting for the device's first frame at the site broker
    deploy.py     a deploy: stage, compare, copy, verify, reset, wait
    provision.py  keys, Wi-Fi and broker login into the registry and onto the board
    cli.py        the subcommands

Exceptions: DeployError is the root.

    DeployError
     ├─ Refused        refused before anything was written (a wrong .mpy version,
     │                 a config for another device, bad arguments)
     └─ DeployFailed   the board stopped answering, a file does not verify, the
                       device was not heard in time

mpremote's TransportError and pyserial's SerialException / OSError are
translated into DeployFailed in link.py, with `raise ... from`.
"""


class DeployError(Exception):
    """The deploy or provisioning did not happen or did not finish."""


class Refused(DeployError):
    """Refused before anything was written to the board."""


class DeployFailed(DeployError):
    """Writing started and did not finish, did not verify, or the device was not heard."""
