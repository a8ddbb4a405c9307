"""Credentials the command line sends to a running hub's HTTP API.

An API token (`anju users token add NAME`) is read from `--token-file FILE`
or the `ANJU_TOKEN` environment variable, never from a command-line argument
(which every user of the machine can read in the process list). Without one,
requests go unauthenticated and the hub answers 401.
"""
import os

ENV = "ANJU_TOKEN"


class TokenError(Exception):
    """The token file cannot be read or holds no token."""


def add_argument(parser):
    parser.add_argument("--token-file", help="file holding the hub API token "
                                             "(default: $%s)" % ENV)


def headers(token_file=None):
    """{"Authorization": "Bearer ..."}, or {} when no token is configured."""
    if token_file:
        try:
            token = open(token_file, encoding="utf-8").read().strip()
        except OSError as exc:
            raise TokenError("cannot read the token file %s: %s" % (token_file, exc)) from exc
        if not token:
            raise TokenError("the token file %s is empty" % token_file)
    else:
        token = os.environ.get(ENV, "").strip()
    return {"Authorization": "Bearer " + token} if token else {}
