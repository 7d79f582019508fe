from click.testing import CliRunner
from sqlalchemy import select

from review.tables import users
from stream.cli import main
from stream.store import engine_for


def run(args, url, tmp_path, stdin=None):
    return CliRunner().invoke(main, ["--data-dir", str(tmp_path), *args], input=stdin,
                              env={"CUSTODES_DATABASE_URL": url, "CUSTODES_CONFIG": ""})


def test_users_add_reads_the_password_from_stdin_and_disable_ends_access(database_url, tmp_path):
    r = run(["users", "add", "pat", "--role", "supervisor", "--linked-user-id", "u-pat", "--password-stdin"],
            database_url, tmp_path, stdin="a very long password\n")
    assert r.exit_code == 0, r.output
    assert "a very long password" not in r.output
    assert run(["users", "add", "pat", "--role", "reviewer", "--password-stdin"], database_url, tmp_path,
               stdin="another long password\n").exit_code == 1  # exists already
    assert run(["users", "add", "x", "--role", "reviewer", "--password-stdin"], database_url, tmp_path,
               stdin="short\n").exit_code == 1
    assert run(["users", "disable", "pat"], database_url, tmp_path).exit_code == 0
    listing = run(["users", "list"], database_url, tmp_path).output
    assert "pat" in listing and "disabled" in listing
    engine = engine_for(database_url)
    with engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.name == "pat")).one()
    engine.dispose()
    assert row.password_hash.startswith("$argon2") and row.disabled and row.linked_user_id == "u-pat"
    out = run(["audit", "verify"], database_url, tmp_path)
    assert out.exit_code == 0 and "2 records" in out.output  # user_add and user_disable


def test_commands_are_registered():
    out = CliRunner().invoke(main, ["--help"]).output
    assert all(name in out for name in ("review", "users", "audit"))
