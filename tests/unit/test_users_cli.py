"""`anju users ...` (host_tools/users_cli.py) on a hub database in a temporary
folder: the first admin, weak passwords refused, machine accounts, tokens."""
import io
import sqlite3

import pytest

from host_tools.cli import main
from hub.auth.accounts import path_for

GOOD = "correct horse battery staple"


@pytest.fixture
def users(tmp_path, monkeypatch, capsys):
    db = tmp_path / "var" / "hub.db"

    def run(*argv, stdin=""):
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(["users", "--db", str(db), *argv])
        out = capsys.readouterr()
        return code, out.out, out.err
    run.accounts = path_for(db)
    return run


@pytest.mark.parametrize("password,reason", [
    ("", "empty"), ("k3y!", "too short"), ("password1234", "common"),
    ("root-root-root-1", "account name"),
])
def test_weak_or_empty_passwords_are_refused_with_the_reason(users, password, reason):
    code, out, err = users("add", "root", "--role", "admin", "--password-stdin",
                           stdin=password + "\n")
    assert code == 2 and reason in err and (not password or password not in out + err)
    assert users("list")[1] == ""


def test_the_first_admin_a_machine_account_and_its_token(users):
    code, out, _ = users("add", "root", "--role", "admin", "--password-stdin", stdin=GOOD + "\n")
    assert code == 0 and "root added, role admin" in out
    (stored,) = sqlite3.connect(users.accounts).execute(
        "SELECT password_hash FROM accounts").fetchone()
    assert stored.startswith("$argon2id$")
    assert users("add", "root", "--role", "staff", "--no-password")[0] == 1     # taken
    assert users("add", "police", "--role", "police_liaison", "--no-password")[0] == 0
    code, token, err = users("token", "add", "police", "--label", "city platform")
    token = token.strip()
    assert code == 0 and token.startswith("anju_") and "shown once" in err
    code, out, _ = users("token", "list")
    token_id = out.split()[0]
    assert code == 0 and "police" in out and "active" in out and token not in out
    code, out, _ = users("list")
    assert "police" in out and "1 token(s)" in out and "root" in out
    assert users("token", "revoke", token_id)[0] == 0
    assert "revoked" in users("token", "list")[1]
    assert users("token", "revoke", "nope")[0] == 1
    code, _, err = users("remove", "root")
    assert code == 1 and "only admin" in err


def test_without_a_terminal_the_password_must_come_from_stdin(users):
    code, _, err = users("add", "root", "--role", "admin")
    assert code == 2 and "--password-stdin" in err


def test_passwd_changes_it_and_refuses_a_weak_one(users):
    users("add", "li-wei", "--role", "staff", "--password-stdin", stdin=GOOD + "\n")
    assert users("passwd", "li-wei", "--password-stdin", stdin="weak\n")[0] == 2
    assert users("passwd", "li-wei", "--password-stdin", stdin=GOOD + " 2\n")[0] == 0
    assert users("passwd", "nobody", "--password-stdin", stdin=GOOD + "\n")[0] == 1
