"""Helpers every command group shares: running a coroutine against a runtime, answering a
failure in one line, printing rows, reading secrets from stdin, parsing values typed on the
command line.

Every failure of a command ends as one line on stderr, ``error: <what> (<where>) — <what to
do>``, and exit status 1 (see :func:`explain`); ``mailroom --debug`` (or MAILROOM_DEBUG=1)
prints the traceback above it. A command reaches MongoDB and RabbitMQ with short timeouts
(:data:`CONNECT_TIMEOUT_S`): the services wait for a dependency, a person at a prompt should
not.

This module is imported by every command, also for ``mailroom --help``: it imports only the
standard library and typer at the top; pydantic, rich, PyMongo and the services' modules are
imported where they are used, so a command pays only for what it touches.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, cast

import typer

if TYPE_CHECKING:
    from pydantic import BaseModel
    from rich.console import Console
    from rich.table import Table

    from shared.models.config import SystemConfig
    from shared.runtime import Runtime
    from shared.settings import SharedSettings

T = TypeVar("T")
WHO = "cli"

CONNECT_TIMEOUT_S = 2.0
"""How long a command waits for MongoDB (server selection) and for RabbitMQ (connect and
declare) before it gives up: a local server answers in milliseconds, a remote one within a
second, and the whole call stays under 3 s with the interpreter's start-up."""
DEBUG_ENV = "MAILROOM_DEBUG"
MONGODB_ENV = "MAILROOM_MONGODB_URL"
BROKER_ENV = "MAILROOM_BROKER_URL"
ID_COLUMNS = frozenset(
    {"id", "name", "number", "account", "case_number", "module", "key", "user", "address"}
)
"""Columns whose values are pasted into other commands (``failed replay ID``, ``accounts
activate NAME``, ``suppressions remove ADDRESS``): never wrapped or cut in a table."""

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

_debug = os.environ.get(DEBUG_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


class CliFailure(Exception):
    """The answer to a failed command: what failed, where, and what to do about it."""

    def __init__(self, what: str, *, where: str, todo: str) -> None:
        super().__init__(what)
        self.what, self.where, self.todo = _one_line(what), _one_line(where), _one_line(todo)

    def __str__(self) -> str:
        return f"{self.what} ({self.where}) — {self.todo}"


def set_debug(on: bool) -> None:
    """Show tracebacks of failures (``mailroom --debug``; MAILROOM_DEBUG=1 does the same)."""
    global _debug
    _debug = _debug or on


def fail(exc: Exception, *, where: str) -> typer.Exit:
    """Print ``exc`` as the one-line answer (the traceback first with --debug) and return the
    exit to raise; ``where`` names the command when the error does not say better."""
    failure = exc if isinstance(exc, CliFailure) else explain(exc, where=where)
    if _debug:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    typer.echo(f"error: {failure}", err=True)
    return typer.Exit(1)


def explain(exc: BaseException, *, where: str) -> CliFailure:
    """Our answer to an error that reached the command line."""
    from shared.errors import (
        ConfigRejected,
        MailroomError,
        NotFound,
        Permanent,
        SecretsUnavailable,
        Transient,
    )

    text = str(exc) or type(exc).__name__
    if isinstance(exc, ConfigRejected):
        return CliFailure(text, where=where, todo="nothing was changed; correct it and run again")
    if isinstance(exc, NotFound):
        return CliFailure(text, where=where, todo="the list command shows what exists")
    if isinstance(exc, SecretsUnavailable):
        return CliFailure(
            text, where=where, todo="set MAILROOM_SECRET_KEY to the key the services use"
        )
    if isinstance(exc, Transient):
        return CliFailure(text, where=where, todo="try again when the server answers")
    if isinstance(exc, Permanent):
        return CliFailure(text, where=where, todo="correct what the message names")
    if isinstance(exc, MailroomError):
        return CliFailure(text, where=where, todo="run again with --debug for the details")
    if _is_validation_error(exc):
        return CliFailure(_validation_text(exc), where=where, todo="correct the values named")
    if isinstance(exc, OSError) and exc.filename is not None:
        return CliFailure(
            f"{exc.strerror or text}: {exc.filename}", where=where, todo="check the path"
        )
    return CliFailure(
        f"unexpected {type(exc).__name__}: {text}",
        where=where,
        todo="this is a bug: run again with --debug and report the traceback",
    )


def mask_url(url: str) -> str:
    """``url`` with the password of its user (if any) replaced by ``***``."""
    return re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", url)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _is_validation_error(exc: BaseException) -> bool:
    # Pydantic is loaded by every command that can raise this; do not import it to ask.
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(exc, pydantic.ValidationError)


def _validation_text(exc: BaseException, *, env_prefix: str = "") -> str:
    errors: list[dict[str, Any]] = getattr(exc, "errors", list)()
    parts = []
    for error in errors:
        where = ".".join(str(p) for p in error.get("loc", ()))
        if where and env_prefix:
            where = f"{env_prefix}{where}".upper()  # the variable the operator sets
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        # A validator's own message may already name the field ("MAILROOM_X must ...").
        parts.append(f"{where}: {message}" if where and where not in message else message)
    return "; ".join(parts) or str(exc)


def _url_from(env: str, url: str) -> str:
    source = f"from {env}" if os.environ.get(env) else f"the default; {env} is not set"
    return f"{mask_url(url)}, {source}"


def _settings() -> SharedSettings:
    from pydantic import ValidationError

    from shared.settings import SharedSettings

    try:
        return SharedSettings()
    except ValidationError as exc:
        raise CliFailure(
            _validation_text(exc, env_prefix=str(SharedSettings.model_config.get("env_prefix"))),
            where="the MAILROOM_* environment",
            todo="correct or unset the variable named",
        ) from exc


def _store_unreachable(url: str, exc: BaseException) -> CliFailure:
    from shared.errors import Transient

    where = _url_from(MONGODB_ENV, url)
    # open_store maps PyMongo's errors: an unreachable server is StoreUnavailable (Transient).
    if isinstance(exc, Transient):
        return CliFailure(
            f"MongoDB cannot be reached: {_network_reason(exc)}",
            where=where,
            todo=f"start MongoDB there or set {MONGODB_ENV} to its URL "
            "(after `make run`: `. .local/env`)",
        )
    return CliFailure(
        f"MongoDB cannot be used: {_reason(exc)}",
        where=where,
        todo=f"check {MONGODB_ENV} and the server",
    )


def _broker_unreachable(url: str, exc: BaseException) -> CliFailure:
    where = _url_from(BROKER_ENV, url)
    if "Authentication" in type(exc).__name__ or "ACCESS_REFUSED" in str(exc):
        return CliFailure(
            "RabbitMQ refused the login",
            where=where,
            todo=f"check the user and password in {BROKER_ENV}; nothing was changed",
        )
    if isinstance(exc, (TimeoutError, OSError)) or "Connection" in type(exc).__name__:
        return CliFailure(
            f"RabbitMQ cannot be reached: {_network_reason(exc)}",
            where=where,
            todo=f"start RabbitMQ there or set {BROKER_ENV} to its URL "
            "(after `make run`: `. .local/env`); nothing was changed",
        )
    return CliFailure(
        f"RabbitMQ cannot be used: {_reason(exc)}",
        where=where,
        todo=f"check {BROKER_ENV} and the broker; nothing was changed",
    )


def _network_reason(exc: BaseException) -> str:
    """Why a connection failed, in a few words (the libraries wrap the socket error in
    their own, with the errno or the text somewhere in the chain)."""
    from shared.errors import chain

    errors = list(chain(exc))
    text = " ".join(f"{type(e).__name__} {e} {e.args!r}" for e in errors).lower()
    if "refused" in text or "errno 111" in text or "(111," in text:
        return "connection refused"
    if any(m in text for m in ("name or service not known", "nodename", "name resolution")):
        return "host name not found"
    if any(isinstance(e, TimeoutError) for e in errors) or "timed out" in text or "timeout" in text:
        return f"no answer within {CONNECT_TIMEOUT_S:g} s"
    return _reason(exc)


def _reason(exc: BaseException) -> str:
    # Library messages can be long (PyMongo appends its topology): the first sentence is enough.
    text = _one_line(str(exc)) or type(exc).__name__
    return mask_url(text.split(", Timeout:", 1)[0].split(" (configured timeouts", 1)[0])[:200]


def _route_library_logs() -> None:
    # The libraries log their own view of a failure (aio-pika: "error when creating
    # transport"); the command answers it in one line, so their records are shown only with
    # --debug, with every secret the runtime registers redacted.
    root = logging.getLogger()
    if root.handlers:
        return
    if not _debug:
        root.addHandler(logging.NullHandler())
        return
    from shared.redact import REDACTOR

    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(REDACTOR)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)


@asynccontextmanager
async def _runtime(*, broker: bool) -> AsyncIterator[Runtime]:
    from shared.runtime import Runtime

    _route_library_logs()
    settings = _settings()
    rt = Runtime(settings)
    mongodb_url = settings.mongodb_url.get_secret_value()
    try:
        await rt.start_store(timeout_ms=int(CONNECT_TIMEOUT_S * 1000))
    except Exception as exc:
        raise _store_unreachable(mongodb_url, exc) from exc
    try:
        if broker:
            try:
                await asyncio.wait_for(rt.start_broker(), CONNECT_TIMEOUT_S)
            except Exception as exc:
                raise _broker_unreachable(settings.broker_url.get_secret_value(), exc) from exc
        yield rt
    finally:
        if broker:
            await rt.broker.stop()
        await rt.close()


def run_with(work: Callable[[Runtime], Awaitable[T]], *, broker: bool = False) -> T:
    """Run ``work`` against a fresh runtime (with the broker when it changes something);
    a failure becomes the one-line answer (see :func:`explain`) and exit status 1."""

    async def main() -> T:
        async with _runtime(broker=broker) as rt:
            return await work(rt)

    try:
        return asyncio.run(main())
    except Exception as exc:
        raise fail(exc, where=_command_path()) from None


def _command_path() -> str:
    # Typer re-exports no accessor for the running command's context; its click has one.
    from typer._click.globals import get_current_context

    ctx = get_current_context(silent=True)
    return ctx.command_path if ctx is not None else "mailroom"


async def loaded_config(rt: Runtime) -> SystemConfig:
    """The configuration the runtime read when it opened the store."""
    return rt.config


class _LazyConsole:
    """Stands for the rich console until it is first used (rich costs start-up time that
    ``--help`` and ``--json`` do not need)."""

    _real: Console | None = None

    def _console(self) -> Console:
        if self._real is None:
            from rich.console import Console

            self._real = Console()
        return self._real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._console(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "_real":
            object.__setattr__(self, name, value)
        else:
            setattr(self._console(), name, value)


console: Console = cast("Console", _LazyConsole())
"""Where tables and messages go (stdout; its width follows the terminal or COLUMNS)."""


def table(title: str, columns: Sequence[str]) -> Table:
    """A table whose identifier columns (:data:`ID_COLUMNS`, ``*_id``) are printed whole,
    however narrow the terminal: the other columns wrap (folding long words) instead."""
    from rich.table import Table

    result = Table(title=title)
    for column in columns:
        if column in ID_COLUMNS or column.endswith("_id"):
            result.add_column(column, no_wrap=True, overflow="ignore")
        else:
            result.add_column(column, overflow="fold")
    return result


def print_rows(
    rows: Sequence[BaseModel], columns: Sequence[str], as_json: bool, title: str
) -> None:
    """Print models as a table of ``columns``, or all their fields as JSON."""
    data = [r.model_dump(mode="json", by_alias=True) for r in rows]
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    from rich.text import Text

    shown = table(title, columns)
    for row in data:
        # Text, not str: a value is data, never rich markup (and is not parsed as such).
        shown.add_row(*(Text(str(row.get(c, ""))) for c in columns))
    print_table(shown)


def print_table(shown: Table) -> None:
    """Print a table made by :func:`table`. Where the terminal is too narrow even for its
    identifiers and one character of every other column, it is printed wider (the terminal
    wraps the lines) rather than cutting an identifier."""
    ids = [c for c in shown.columns if c.no_wrap]
    needed = (
        sum(max(len(str(v)) for v in (c.header, *c.cells)) + 2 for c in ids)
        + 3 * (len(shown.columns) - len(ids))
        + len(shown.columns)
        + 1
    )
    width = console.width
    if needed <= width:
        console.print(shown)
        return
    console.width = needed  # print() caps a width given to it at the console's
    try:
        console.print(shown)
    finally:
        console.width = width


def parse_value(text: str) -> Any:
    """JSON when it parses (numbers, booleans, lists), the plain string otherwise."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def read_secret(from_stdin: bool) -> str | None:
    """One line from stdin when asked for: secrets never come from arguments."""
    return sys.stdin.readline().rstrip("\r\n") if from_stdin else None
