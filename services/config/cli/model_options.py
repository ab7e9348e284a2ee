"""Typer options derived from a pydantic model: one option per field, with the field's
description as its help, handed to the command as one validated instance. A filter declared
once as a model (``shared.models.desk.DeskFilter``) is then the same on the API and the
command line, and a new field is a new option without touching the command.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable, Collection
from typing import Annotated, Any, TypeVar

import typer

if typing.TYPE_CHECKING:
    from pydantic import BaseModel

F = TypeVar("F", bound=Callable[..., Any])


def _option_type(annotation: Any) -> Any:
    """The type typer parses the option as: a Literal becomes text (the model checks the
    choice and says which are allowed)."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return str
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return _option_type(next(a for a in args if a is not type(None))) | None
    return annotation


def _choices(annotation: Any) -> str:
    if typing.get_origin(annotation) is typing.Literal:
        return " (" + ", ".join(str(a) for a in typing.get_args(annotation)) + ")"
    return ""


def model_options(
    model: type[BaseModel], *, param: str = "filter", exclude: Collection[str] = ()
) -> Callable[[F], F]:
    """Give a typer command one ``--option`` per field of ``model`` (not ``exclude``); the
    command receives them as ``param``, a ``model`` instance. A value the model refuses is
    a usage error naming the option."""
    from pydantic import ValidationError

    fields = {n: f for n, f in model.model_fields.items() if n not in exclude}

    def decorate(command: F) -> F:
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != param]
        added = [
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=field.default,
                annotation=Annotated[
                    _option_type(field.annotation),
                    typer.Option(help=(field.description or "") + _choices(field.annotation)),
                ],
            )
            for name, field in fields.items()
        ]

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            values = {name: kwargs.pop(name) for name in fields}
            try:
                kwargs[param] = model.model_validate(values)
            except ValidationError as exc:
                error = exc.errors()[0]
                name = str(error["loc"][0]) if error["loc"] else param
                message = str(error["msg"]).removeprefix("Value error, ")
                raise typer.BadParameter(message, param_hint=f"--{name}") from None
            return command(*args, **kwargs)

        parameters = [*own, *added]
        wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        return typing.cast(F, wrapper)

    return decorate
