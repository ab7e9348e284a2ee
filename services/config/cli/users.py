"""``mailroom users …`` and ``mailroom tokens …``: console users, their roles and their API
tokens. Passwords come from stdin (``--password-stdin``) or a hidden prompt, never from
arguments; a token is printed once, when it is created, and never again."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from services.config.api_tokens import create_token, list_tokens, revoke_token
from services.config.cli.common import WHO, JsonOpt, console, print_rows, read_secret, run_with
from services.config.users import (
    add_user,
    delete_user,
    list_users,
    reset_password,
    set_email,
    set_role,
    unlock,
    user_log,
)
from shared.models.users import Role

app = typer.Typer(help="Console users and their roles.", no_args_is_help=True)
tokens_app = typer.Typer(
    help="Users' API tokens (printed once, at creation).", no_args_is_help=True
)

USER_COLUMNS = ("name", "role", "email", "last_login_at", "failed_logins", "locked_until")
LOG_COLUMNS = ("at", "who", "action", "user", "detail")
TOKEN_COLUMNS = ("id", "user", "label", "created_at", "last_used_at")
RoleOpt = Annotated[
    Role,
    typer.Option(help="admin: everything; operator: desk, cases, outbox; viewer: read only."),
]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from stdin (one line).")
]


def _password(from_stdin: bool) -> str:
    """The password from stdin, or from a hidden prompt on a terminal."""
    password = read_secret(from_stdin)
    if password is not None:
        return password
    if sys.stdin.isatty():
        typed: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        return typed
    typer.echo("error: no password given — pipe it in with --password-stdin", err=True)
    raise typer.Exit(2)


@app.command("add")
def users_add(
    name: str,
    role: RoleOpt = "viewer",
    email: Annotated[
        str | None, typer.Option(help="The user's mail address (Test Account sends there).")
    ] = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Add a user (the password from stdin or a prompt)."""
    password = _password(password_stdin)
    user = run_with(
        lambda rt: add_user(rt, name=name, role=role, password=password, who=WHO, email=email)
    )
    console.print(f"added {user.name} ({user.role})", highlight=False)


@app.command("set-email")
def users_set_email(
    name: str,
    email: Annotated[str, typer.Argument(help="The user's mail address; '' removes it.")],
) -> None:
    """Set or remove a user's mail address (where Test Account sends by default)."""
    user = run_with(lambda rt: set_email(rt, name=name, email=email, who=WHO))
    console.print(f"{user.name}: email {user.email or 'none'}", highlight=False)


@app.command("list")
def users_list(as_json: JsonOpt = False) -> None:
    """List users with their roles and lock-out state."""
    print_rows(run_with(list_users), USER_COLUMNS, as_json, "Users")


@app.command("set-role")
def users_set_role(name: str, role: Annotated[Role, typer.Argument()]) -> None:
    """Give a user another role (the last admin keeps theirs)."""
    user = run_with(lambda rt: set_role(rt, name=name, role=role, who=WHO))
    console.print(f"{user.name} is now {user.role}", highlight=False)


@app.command("reset-password")
def users_reset_password(name: str, password_stdin: PasswordStdin = False) -> None:
    """Set a new password (from stdin or a prompt); ends any lock-out."""
    password = _password(password_stdin)
    user = run_with(lambda rt: reset_password(rt, name=name, password=password, who=WHO))
    console.print(f"password of {user.name} replaced", highlight=False)


@app.command("unlock")
def users_unlock(name: str) -> None:
    """End a user's lock-out after wrong passwords."""
    user = run_with(lambda rt: unlock(rt, name=name, who=WHO))
    console.print(f"{user.name} unlocked", highlight=False)


@app.command("delete")
def users_delete(name: str) -> None:
    """Delete a user and revoke their tokens (not the last admin)."""
    run_with(lambda rt: delete_user(rt, name=name, who=WHO))
    console.print(f"deleted {name}", highlight=False)


@app.command("log")
def users_log(
    name: Annotated[str | None, typer.Argument(help="Only changes to this user.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Changes to users and tokens, newest first, with who made them."""
    entries = run_with(lambda rt: user_log(rt, name=name, limit=limit))
    print_rows(entries, LOG_COLUMNS, as_json, "User changes")


@tokens_app.command("create")
def tokens_create(
    user: str,
    label: Annotated[str, typer.Option(help="What the token is for.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Create an API token for a user; it is printed this once and never again."""
    token = run_with(lambda rt: create_token(rt, user=user, label=label, who=WHO))
    if as_json:
        typer.echo(json.dumps(token.model_dump(mode="json"), indent=2))
        return
    console.print(f"token {token.id} for {token.user} ({token.label or 'no label'}):")
    typer.echo(token.token)
    console.print("it is shown this once: store it now (mailroom keeps only its hash)")


@tokens_app.command("list")
def tokens_list(
    user: Annotated[str | None, typer.Option(help="Only this user's tokens.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List tokens (ids, labels and use; never the tokens)."""
    print_rows(
        run_with(lambda rt: list_tokens(rt, user=user)), TOKEN_COLUMNS, as_json, "API tokens"
    )


@tokens_app.command("revoke")
def tokens_revoke(token_id: str) -> None:
    """Revoke a token by its id."""
    run_with(lambda rt: revoke_token(rt, token_id=token_id, who=WHO))
    console.print(f"revoked {token_id}", highlight=False)
