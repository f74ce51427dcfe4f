"""``gis-grid users``: manage accounts from the command line (as the database owner).

``gis-grid users add NAME --role admin`` asks for the password twice (or reads one line from
standard input with ``--password-stdin``, for scripts); ``list``, ``disable``, ``enable``,
``set-password``. Disabling an account or setting a new password revokes its open sessions.
``bootstrap`` creates the first administrator (``admin``) when there is none, with the password
in ``GIS_GRID_ADMIN_PASSWORD`` or a random one printed once (``scripts/serve.sh`` runs it).
"""

from __future__ import annotations

import functools
import os
import secrets
import sys
from collections.abc import Callable
from typing import Annotated, NoReturn, ParamSpec, TypeVar

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gis_grid.config import get_settings
from gis_grid.db.engine import make_engine
from gis_grid.errors import GridError
from gis_grid.security import accounts
from gis_grid.security.roles import Role

__all__ = ["users_app"]

P = ParamSpec("P")
R = TypeVar("R")

users_app = typer.Typer(help="Manage user accounts (roles, passwords).", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)


def _fail(message: str) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code=2)


def _friendly(func: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except GridError as exc:
            _fail(str(exc))
        except sa.exc.OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            _fail(f"database unreachable: {reason}. Is GIS_GRID_DATABASE_URL right?")

    return wrapper


def _in_transaction(work: Callable[[sa.Connection], R]) -> R:
    engine = make_engine(get_settings().database_url)
    try:
        with engine.begin() as conn:
            return work(conn)
    finally:
        engine.dispose()


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    value: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input")
]


@users_app.command("add")
@_friendly
def add(
    username: Annotated[str, typer.Argument(help="3-64 characters: a-z 0-9 _ . @ -")],
    role: Annotated[Role, typer.Option(help="The account's role")],
    member: Annotated[str | None, typer.Option(help="For role member: the member's code")] = None,
    display_name: Annotated[str | None, typer.Option(help="A name to show")] = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Create an account."""
    password = _password(password_stdin)
    user = _in_transaction(
        lambda conn: accounts.create_user(
            conn, username, password, role, member_code=member, display_name=display_name
        )
    )
    console.print(f"created {user.username} ({user.role.value})")


@users_app.command("list")
@_friendly
def list_() -> None:
    """List the accounts."""
    users = _in_transaction(accounts.list_users)
    table = Table("username", "role", "member", "display name", "state")
    for user in users:
        state = "disabled" if user.disabled else "active"
        if user.locked_until is not None:
            state += f", locked until {user.locked_until:%Y-%m-%d %H:%M}"
        table.add_row(
            user.username, user.role.value, user.member_code or "", user.display_name or "", state
        )
    console.print(table)


@users_app.command("disable")
@_friendly
def disable(username: str) -> None:
    """Disable an account (its open sessions are revoked)."""
    _in_transaction(lambda conn: accounts.disable_user(conn, username))
    console.print(f"disabled {username}")


@users_app.command("enable")
@_friendly
def enable(username: str) -> None:
    """Enable a disabled account again."""
    _in_transaction(lambda conn: accounts.disable_user(conn, username, disabled=False))
    console.print(f"enabled {username}")


@users_app.command("set-password")
@_friendly
def set_password(username: str, password_stdin: PasswordStdin = False) -> None:
    """Set a new password (unlocks the account, revokes its open sessions)."""
    password = _password(password_stdin)
    _in_transaction(lambda conn: accounts.set_password(conn, username, password))
    console.print(f"password of {username} set")


@users_app.command("bootstrap")
@_friendly
def bootstrap() -> None:
    """Create the first administrator ``admin`` if no administrator exists."""

    def work(conn: sa.Connection) -> str | None:
        if any(u.role is Role.ADMIN and not u.disabled for u in accounts.list_users(conn)):
            return None
        password = os.environ.get("GIS_GRID_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        accounts.create_user(conn, "admin", password, Role.ADMIN, display_name="管理员")
        return password

    password = _in_transaction(work)
    if password is None:
        console.print("an administrator exists already: nothing to do")
    elif os.environ.get("GIS_GRID_ADMIN_PASSWORD"):
        console.print("created administrator admin (password from GIS_GRID_ADMIN_PASSWORD)")
    else:
        console.print(f"created administrator admin with password {password} (shown once)")
