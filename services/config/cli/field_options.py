"""CLI options derived from a stored view's fields (``shared.models.field_specs``), so that a
field added to the model is an option of ``accounts add|set`` and ``outgoing set`` at once.

Each field becomes ``--<name>`` (underscores as dashes) with the field's description as its
help: a choice takes its values in any case (``--protocol imaps``), a yes/no field is a
``--<name>/--no-<name>`` pair, a secret is never an argument but ``--<name>-stdin`` (one line
read from stdin). On a command that creates, an option's default is the model's and a
required field is a required option; on a command that changes, every option defaults to
"keep" and ``--reset FIELD`` puts a field back to its default.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Annotated, Any, Literal, Optional, TypeVar

import typer

from services.config.cli.common import read_secret
from shared.models.field_specs import FieldSpec

F = TypeVar("F", bound=Callable[..., None])

RESET = "reset"
"""The parameter of ``--reset FIELD`` on a command that changes."""

_TYPES: Mapping[str, Any] = {"text": str, "date": str, "bool": bool, "lines": list[str]}
"""Option types by field kind; a ``lines`` field is a repeatable option (``--scopes A
--scopes B``)."""


def secret_param(spec: FieldSpec) -> str:
    """The parameter that asks for a secret field from stdin (``password_stdin``)."""
    return f"{spec.name}_stdin"


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _help(spec: FieldSpec) -> str:
    only = "; ".join(f"{k} {' or '.join(v)}" for k, v in spec.applies_to.items())
    return f"{spec.description} Only with {only}." if only else spec.description


def _option(spec: FieldSpec, *, create: bool, flags: Sequence[str] | None) -> inspect.Parameter:
    if spec.secret:
        decl = [_flag(secret_param(spec))]
        info = typer.Option(*decl, help=f"Read the {spec.title.lower()} from stdin (one line).")
        return inspect.Parameter(
            secret_param(spec),
            inspect.Parameter.KEYWORD_ONLY,
            default=False,
            annotation=Annotated[bool, info],
        )
    if spec.kind == "choice":
        kind: Any = Literal[spec.choices]
    elif spec.kind == "number":
        kind = int if spec.integer else float
    else:
        kind = _TYPES[spec.kind]
    if flags:
        decls = list(flags)
    elif spec.kind == "bool":
        decls = [f"{_flag(spec.name)}/--no-{spec.name.replace('_', '-')}"]
    else:
        decls = [_flag(spec.name)]
    info = typer.Option(*decls, help=_help(spec), case_sensitive=False)
    if create and spec.required:
        default: Any = inspect.Parameter.empty
    else:
        default = spec.default if create else None  # a change: None leaves the field as it is
    optional = not create or spec.nullable
    return inspect.Parameter(
        spec.name,
        inspect.Parameter.KEYWORD_ONLY,
        default=default,
        annotation=Annotated[Optional[kind] if optional else kind, info],  # noqa: UP045
    )


def field_options(
    specs: Iterable[FieldSpec],
    *,
    create: bool,
    flags: Mapping[str, Sequence[str]] | None = None,
) -> list[inspect.Parameter]:
    """The options of ``specs``; ``flags`` gives a field other option names (an older
    spelling kept beside the derived one)."""
    chosen = list(specs)
    options = [_option(s, create=create, flags=(flags or {}).get(s.name)) for s in chosen]
    resettable = tuple(s.name for s in chosen if not s.required and not s.secret)
    if not create and resettable:
        help_ = f"Put a field back to its default (repeatable): {', '.join(resettable)}."
        options.append(
            inspect.Parameter(
                RESET,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[
                    Optional[list[str]],  # noqa: UP045
                    typer.Option("--reset", help=help_),
                ],
            )
        )
    return options


def with_field_options(
    specs: Iterable[FieldSpec],
    *,
    create: bool,
    flags: Mapping[str, Sequence[str]] | None = None,
) -> Callable[[F], F]:
    """Give a command taking ``**values`` the options of ``specs`` after its own parameters;
    typer reads a command's parameters from its signature."""

    def wrap(command: F) -> F:
        own = [
            p
            for p in inspect.signature(command, eval_str=True).parameters.values()
            if p.kind is not inspect.Parameter.VAR_KEYWORD
        ]
        signature = inspect.Signature([*own, *field_options(specs, create=create, flags=flags)])
        command.__signature__ = signature  # type: ignore[attr-defined]  # read by typer
        return command

    return wrap


def given_fields(specs: Sequence[FieldSpec], values: Mapping[str, Any]) -> dict[str, Any]:
    """The fields a command writes: every option given (None: left out, so kept), the
    ``--reset`` fields at their defaults, and the secrets asked for read from stdin.

    A secret asked for that does not apply goes to the one that does, if exactly one does:
    ``--password-stdin`` with ``--auth oauth2`` reads the client secret, as it always did.
    """
    fields = {
        s.name: values[s.name] for s in specs if not s.secret and values.get(s.name) is not None
    }
    by_name = {s.name: s for s in specs if not s.required and not s.secret}
    for name in values.get(RESET) or ():
        if name not in by_name:
            raise typer.BadParameter(
                f"{name!r} is not a field with a default; use one of {', '.join(by_name)}",
                param_hint="--reset",
            )
        fields[name] = by_name[name].default
    current = {s.name: s.default for s in specs} | fields
    applying = [s for s in specs if s.secret and s.applies(current)]
    for spec in specs:
        if spec.secret and values.get(secret_param(spec)):
            target = spec
            if not spec.applies(current) and len(applying) == 1:
                target = applying[0]
            fields[target.name] = read_secret(True)
    return fields
