"""``anju users ...``: the accounts of the hub's HTTP API (docs/http_api.md).

    anju users add NAME --role ROLE       password from a prompt, or --password-stdin;
                                          --no-password for a machine account (tokens only)
    anju users list
    anju users remove NAME
    anju users passwd NAME                a new password (every session of NAME ends)
    anju users token add NAME [--label L] prints the token once
    anju users token list [NAME]
    anju users token revoke TOKEN_ID

The accounts database sits beside the hub's database (hub/auth/accounts.py),
found like `anju hub run` finds it: `--db`, else the site file's
`hub.database` (`--config`), else var/hub.db. It can be changed while the hub
runs; the hub sees a new account, token or revocation at the next request.
The first admin is made here: there is no default account.

Exit codes: 0 done, 1 refused (no such account, name taken, last admin), 2
invalid input (a weak password, an unknown role; the message says which).
Never prints a password; a token only once, when it is made.
"""
import getpass
import sys
from pathlib import Path

from hub import ConfigError, HubError
from hub.auth import AccountInvalid, AuthError, roles

DEFAULT_DB = "var/hub.db"


def _db_path(args):
    if args.db:
        return args.db
    if args.config:
        from hub.config import site as config
        site = config.load_site(args.config)
        return (site.hub or {}).get("database") or DEFAULT_DB
    return DEFAULT_DB


def _open(args):
    from hub.auth.accounts import AccountStore, path_for
    from hub.clock import SystemClock
    db = Path(_db_path(args))
    db.parent.mkdir(parents=True, exist_ok=True)
    return AccountStore(path_for(db), SystemClock())


def _actor():
    return "cli:%s" % getpass.getuser()


def _read_password(args, name):
    if args.password_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    if not sys.stdin.isatty():
        raise AccountInvalid("no terminal to ask for the password; use --password-stdin")
    first = getpass.getpass("password for %s: " % name)
    from hub.auth import passwords
    passwords.check_policy(first, name)  # before asking twice
    if getpass.getpass("again: ") != first:
        raise AccountInvalid("the two passwords differ")
    return first


def cmd_add(store, args):
    password = None if args.no_password else _read_password(args, args.name)
    account = store.add(args.name, args.role, password, _actor())
    print("account %s added, role %s%s" % (account["name"], account["role"],
                                            "" if password else " (no password: API tokens only)"))
    return 0


def cmd_list(store, args):
    tokens = {}
    for t in store.tokens():
        if t["revoked_at"] is None:
            tokens[t["account"]] = tokens.get(t["account"], 0) + 1
    for a in store.accounts():
        print("%-24s %-10s %-12s %d token(s)" % (a["name"], a["role"],
                                                 "password" if a["password"] else "no password",
                                                 tokens.get(a["name"], 0)))
    return 0


def cmd_remove(store, args):
    store.remove(args.name, _actor())
    print("account %s removed (its tokens and sessions with it)" % args.name)
    return 0


def cmd_passwd(store, args):
    if store.account(args.name) is None:
        from hub.auth import AccountNotFound
        raise AccountNotFound("no account %s" % args.name)
    store.set_password(args.name, _read_password(args, args.name), _actor())
    print("password of %s changed; its sessions have ended" % args.name)
    return 0


def cmd_token_add(store, args):
    token_id, token = store.add_token(args.name, args.label, _actor())
    print("token %s for %s (shown once; keep it in a file readable only by its user):"
          % (token_id, args.name), file=sys.stderr)
    print(token)
    return 0


def cmd_token_list(store, args):
    for t in store.tokens(args.name):
        print("%s  %-24s %-8s %s" % (t["id"], t["account"],
                                     "revoked" if t["revoked_at"] else "active", t["label"] or ""))
    return 0


def cmd_token_revoke(store, args):
    done = store.revoke_token(args.token_id, _actor())
    print("token %s %s" % (args.token_id, "revoked" if done else "was already revoked"))
    return 0


def _run(fn):
    def run(args):
        try:
            store = _open(args)
        except (ConfigError, HubError) as exc:
            print("anju: error: %s" % exc, file=sys.stderr)
            return 2
        try:
            return fn(store, args)
        except AccountInvalid as exc:
            print("anju: error: %s" % exc, file=sys.stderr)
            return 2
        except AuthError as exc:
            print("anju: error: %s" % exc, file=sys.stderr)
            return 1
        except HubError as exc:
            print("anju: error: %s" % exc, file=sys.stderr)
            return 2
        finally:
            store.close()
    return run


def register(subparsers):
    p = subparsers.add_parser("users", help="accounts and API tokens of the hub's HTTP API")
    p.add_argument("--db", help="the hub's database (default: hub.database of --config, "
                                "or %s)" % DEFAULT_DB)
    p.add_argument("--config", help="the site file, for its hub.database")
    sub = p.add_subparsers(dest="users_command", required=True)

    a = sub.add_parser("add", help="add an account")
    a.add_argument("name")
    a.add_argument("--role", required=True, choices=roles.ROLES,
                   help="; ".join(roles.ROLE_TITLES[r] for r in roles.ROLES))
    how = a.add_mutually_exclusive_group()
    how.add_argument("--password-stdin", action="store_true",
                     help="read the password from the first line of stdin (scripts)")
    how.add_argument("--no-password", action="store_true",
                     help="a machine account: it cannot log in, it uses API tokens")
    a.set_defaults(func=_run(cmd_add))

    ls = sub.add_parser("list", help="accounts, roles and their active tokens")
    ls.set_defaults(func=_run(cmd_list))

    rm = sub.add_parser("remove", help="remove an account, its tokens and sessions")
    rm.add_argument("name")
    rm.set_defaults(func=_run(cmd_remove))

    pw = sub.add_parser("passwd", help="set an account's password")
    pw.add_argument("name")
    pw.add_argument("--password-stdin", action="store_true")
    pw.set_defaults(func=_run(cmd_passwd))

    tok = sub.add_parser("token", help="API tokens for machines and scripts").add_subparsers(
        dest="token_command", required=True)
    ta = tok.add_parser("add", help="a new token of an account (printed once)")
    ta.add_argument("name")
    ta.add_argument("--label", help="what it is for (police platform, backup script)")
    ta.set_defaults(func=_run(cmd_token_add))
    tl = tok.add_parser("list", help="tokens (never their secret)")
    tl.add_argument("name", nargs="?")
    tl.set_defaults(func=_run(cmd_token_list))
    tr = tok.add_parser("revoke", help="revoke a token at once")
    tr.add_argument("token_id")
    tr.set_defaults(func=_run(cmd_token_revoke))
