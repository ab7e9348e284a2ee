"""A stored view's fields as every surface needs them: one :class:`FieldSpec` per field.

The stored model is the one declaration of an account's (and the outgoing connection's)
fields: type, default, constraints, ``title``, docstring and the hints of
``shared.models.field_hints``. The API schemas (``services.config.api.model_schemas``), the
CLI options (``services.config.cli.field_options``) and the console's form read the fields
from here, so that a field added to the model appears on every surface.

A spec is plain data::

    for spec in account_fields():
        if spec.applies(values):   # e.g. password only with auth basic
            render(spec.title, spec.kind, spec.choices, spec.placeholder_for(values))
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, EmailStr, SecretStr
from pydantic.fields import FieldInfo

from shared.models.config import IncomingAccount, OutgoingConnection
from shared.models.credentials import Credential
from shared.models.messages import MailAddress

Kind = Literal[
    "text", "number", "bool", "choice", "secret", "date", "lines", "address", "addresses"
]
"""What input a field takes: free text, a number, yes/no, one of ``choices``, a write-only
secret, a day (YYYY-MM-DD), a list of texts (one per line), a mail address with its display
name, or a list of those."""


@dataclass(frozen=True)
class FieldSpec:
    """One field of a stored view, as a form, an API schema or a CLI option shows it."""

    name: str
    """The field's name, as the API and the stored property spell it."""
    title: str
    """A short label (the field's ``title``; else its name in words)."""
    description: str
    """What the field means (the field's docstring, on one line)."""
    kind: Kind
    choices: tuple[str, ...] = ()
    """The values a ``choice`` field takes, in declaration order."""
    required: bool = False
    """No default: a new object needs a value."""
    default: Any = None
    """The value a new object gets when none is given (None for a required field)."""
    nullable: bool = False
    """None is a value (an empty input means "not set")."""
    integer: bool = False
    """A ``number`` field takes whole numbers only."""
    placeholder: str = ""
    """What an empty input shows."""
    placeholder_by: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Placeholders by another field's value, see :meth:`placeholder_for`."""
    secret: bool = False
    """Write-only: never shown, only whether it is set."""
    group: str = ""
    """The form section."""
    applies_to: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """The field applies only while each named field has one of these values."""

    def applies(self, values: Mapping[str, Any]) -> bool:
        """Whether the field applies to an object with ``values`` (by field name; give them
        all, defaults included: a missing controlling field does not match)."""
        return all(str(values.get(other)) in allowed for other, allowed in self.applies_to.items())

    def placeholder_for(self, values: Mapping[str, Any]) -> str:
        """The placeholder for an object with ``values``: by the controlling field's value
        where the field declares one (the port of the chosen protocol), else the fixed one."""
        for other, by_value in self.placeholder_by.items():
            shown = by_value.get(str(values.get(other)))
            if shown is not None:
                return shown
        return self.placeholder


def unwrap(annotation: Any) -> tuple[Any, bool]:
    """The type inside ``Annotated``/``Optional`` and whether None is allowed."""
    nullable = False
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            nullable = nullable or len(args) < len(get_args(annotation))
            if len(args) != 1:
                return annotation, nullable
            annotation = args[0]
        else:
            return annotation, nullable


def _kind(name: str, inner: Any) -> tuple[Kind, tuple[str, ...]]:
    if get_origin(inner) is Literal:
        return "choice", tuple(str(a) for a in get_args(inner))
    if get_origin(inner) in (tuple, list):
        item, _ = unwrap(get_args(inner)[0])
        if item is MailAddress:
            return "addresses", ()
        if item is EmailStr or (isinstance(item, type) and issubclass(item, str)):
            return "lines", ()
    if inner is MailAddress:
        return "address", ()
    if inner is bool:  # before int: bool is an int
        return "bool", ()
    if inner in (int, float):
        return "number", ()
    if inner is SecretStr:
        return "secret", ()
    if inner is date:
        return "date", ()
    if inner is EmailStr or (isinstance(inner, type) and issubclass(inner, str)):
        return "text", ()
    raise TypeError(f"{name}: {inner!r} has no field kind; give it one in field_specs")


WORDS: Mapping[str, str] = {
    "tls": "TLS",
    "ca": "CA",
    "id": "ID",
    "ms": "(ms)",
    "mb": "(MB)",
    "seconds": "(seconds)",
    "oauth": "OAuth",
    "smtp": "SMTP",
}
"""Words a title derived from a field's name writes differently (``verify_tls``: "Verify
TLS")."""


def _title(name: str) -> str:
    words = " ".join(WORDS.get(w, w) for w in name.split("_"))
    return words[:1].upper() + words[1:]


def _one_line(text: str | None) -> str:
    # The docstrings mark names as ``code`` for Sphinx; every surface shows them plainly.
    return " ".join((text or "").replace("``", "").split())


def field_hints(info: FieldInfo) -> Mapping[str, Any]:
    """The hints a field carries (``json_schema_extra`` when it is a mapping)."""
    extra = info.json_schema_extra
    return extra if isinstance(extra, Mapping) else {}


def spec_of(name: str, info: FieldInfo) -> FieldSpec:
    """The spec of one pydantic field."""
    inner, nullable = unwrap(info.annotation)
    kind, choices = _kind(name, inner)
    extra = field_hints(info)
    secret = kind == "secret" or bool(extra.get("secret"))
    required = info.is_required()
    return FieldSpec(
        name=name,
        title=info.title or _title(name),
        description=_one_line(info.description),
        kind="secret" if secret else kind,
        choices=choices,
        required=required,
        default=None if required else info.get_default(call_default_factory=True),
        nullable=nullable,
        integer=inner is int,
        placeholder=str(extra.get("placeholder", "")),
        placeholder_by={k: dict(v) for k, v in extra.get("placeholder_by", {}).items()},
        secret=secret,
        group=str(extra.get("group", "")),
        applies_to={k: tuple(map(str, v)) for k, v in extra.get("applies_to", {}).items()},
    )


def field_specs(model: type[BaseModel]) -> list[FieldSpec]:
    """Every field of ``model`` in declaration order."""
    return [spec_of(name, info) for name, info in model.model_fields.items()]


def defaults(specs: list[FieldSpec]) -> dict[str, Any]:
    """The values a new object starts with (required fields left out)."""
    return {s.name: s.default for s in specs if not s.required}


def credential_fields() -> list[FieldSpec]:
    """The fields of a named OAuth 2.0 credential."""
    return field_specs(Credential)


def account_fields() -> list[FieldSpec]:
    """The fields of an incoming account."""
    return field_specs(IncomingAccount)


def outgoing_fields() -> list[FieldSpec]:
    """The fields of the outgoing SMTP connection."""
    return field_specs(OutgoingConnection)
