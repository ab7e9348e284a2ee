"""A console form declared by a pydantic model: its fields become form fields (title, help,
input kind, choices, secret) and the posted strings become the model's values again.

A field is read from the model alone: the title is the field's ``title`` (else its name),
the help its description (the attribute docstring), the input kind its annotation (a
``Literal`` is a drop-down, ``bool`` a check box, ``SecretStr`` a write-only secret, a tuple
one entry per line). Extra metadata comes from the field's ``json_schema_extra`` when it is
a mapping: ``secret``, ``group``, ``title``, ``help``, ``placeholder`` and ``applies_to``
(``{"protocol": ["IMAP", "IMAPS"]}``: the field is shown only while ``protocol`` has one of
those values). The metadata is optional; a page may add the same keys as ``hints`` for a
model that does not carry them.

Secrets are write-only: the form shows whether one is set and takes a new value; an empty
input keeps the stored one. A field that does not apply to the form's current values is not
shown and takes its default, so a value that only made sense for the other protocol cannot
block a save.
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from email.utils import formataddr, parseaddr
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, EmailStr, SecretStr, ValidationError
from pydantic.fields import FieldInfo

from shared.models.messages import MailAddress

Kind = Literal[
    "text", "number", "checkbox", "select", "secret", "date", "lines", "address", "addresses"
]

CHOICE_LABELS: Mapping[str, str] = {
    "inherit": "Use global configuration",
    "yes": "Yes",
    "no": "No",
    "basic": "Basic",
    "oauth2": "OAuth 2.0",
    "none": "None",
    "auto": "Auto",
    "starttls": "STARTTLS",
    "tls": "TLS",
    "all": "All mail in the folder",
    "new": "Only new mail",
    "since": "Mail since a date",
}
"""How a drop-down shows a model's choice; a choice not listed is shown as it is."""

HINT_KEYS = ("secret", "group", "title", "help", "placeholder", "applies_to")


@dataclass(frozen=True)
class FormField:
    """One input of a form, as the template renders it."""

    name: str
    title: str
    help: str
    kind: Kind
    required: bool
    default: Any
    choices: tuple[tuple[str, str], ...] = ()
    """(value, label) of a drop-down."""
    step: str = ""
    """A number input's step (``any`` for floats)."""
    placeholder: str = ""
    group: str = ""
    applies_to: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    controls: bool = False
    """Other fields' visibility depends on this one: changing it re-renders the form."""


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The type inside ``Optional``/``Annotated``, and whether None is allowed."""
    optional = False
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            optional = optional or len(args) < len(get_args(annotation))
            if len(args) != 1:
                return annotation, optional
            annotation = args[0]
        else:
            return annotation, optional


def _kind(name: str, annotation: Any) -> tuple[Kind, tuple[str, ...]]:
    """The input kind of a field's type, and a drop-down's choices."""
    inner, _ = _unwrap(annotation)
    origin = get_origin(inner)
    if origin is Literal:
        return "select", tuple(str(a) for a in get_args(inner))
    if origin in (tuple, list):
        item, _ = _unwrap(get_args(inner)[0])
        if item is MailAddress:
            return "addresses", ()
        if item in (str, EmailStr) or (isinstance(item, type) and issubclass(item, str)):
            return "lines", ()
    simple: dict[Any, Kind] = {
        bool: "checkbox",
        int: "number",
        float: "number",
        SecretStr: "secret",
        date: "date",
        MailAddress: "address",
        str: "text",
        EmailStr: "text",
    }
    if inner in simple:
        return simple[inner], ()
    if isinstance(inner, type) and issubclass(inner, str):  # EmailStr and the like
        return "text", ()
    raise TypeError(f"{name}: no form input for {inner!r}; leave the field out of the form")


def _hints(info: FieldInfo) -> dict[str, Any]:
    # json_schema_extra may be a mapping, a callable or absent: only a mapping carries hints.
    extra = info.json_schema_extra
    return {k: extra[k] for k in HINT_KEYS if k in extra} if isinstance(extra, Mapping) else {}


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
    words = [WORDS.get(w, w) for w in name.split("_")]
    return " ".join(words)[:1].upper() + " ".join(words)[1:]


def _help(text: str | None) -> str:
    # The docstrings mark names as ``code`` for Sphinx; a form shows them plainly.
    return " ".join((text or "").replace("``", "").split())


def form_fields(
    model: type[BaseModel],
    *,
    exclude: Iterable[str] = (),
    hints: Mapping[str, Mapping[str, Any]] | None = None,
    order: Sequence[str] = (),
) -> tuple[FormField, ...]:
    """The form fields of ``model`` without ``exclude``: those named in ``order`` first, in
    that order, then the rest in declaration order. ``hints`` (by field name) add to or
    override the metadata the model's fields carry."""
    left_out = set(exclude)
    found: list[FormField] = []
    declared = model.model_fields
    names = [*(n for n in order if n in declared), *(n for n in declared if n not in order)]
    for name in names:
        info = declared[name]
        if name in left_out:
            continue
        meta = {**_hints(info), **(hints or {}).get(name, {})}
        kind, choices = _kind(name, info.annotation)
        if meta.get("secret"):
            kind = "secret"
        inner, _ = _unwrap(info.annotation)
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        found.append(
            FormField(
                name=name,
                title=str(meta.get("title") or info.title or _title(name)),
                help=_help(meta.get("help") or info.description),
                kind=kind,
                required=info.is_required() and kind != "checkbox",
                default=default,
                choices=tuple((c, CHOICE_LABELS.get(c, c)) for c in choices),
                step="any" if inner is float else "1",
                placeholder=str(meta.get("placeholder") or ""),
                group=str(meta.get("group") or ""),
                applies_to={k: tuple(map(str, v)) for k, v in meta.get("applies_to", {}).items()},
            )
        )
    controlling = {other for f in found for other in f.applies_to}
    return tuple(replace(f, controls=f.name in controlling) for f in found)


def _text(value: Any) -> str:
    """A stored value as its input shows it."""
    if value is None:
        return ""
    if isinstance(value, MailAddress):
        return formataddr((value.name, str(value.address))) if value.name else str(value.address)
    if isinstance(value, Mapping) and "address" in value:
        return _text(MailAddress.model_validate(value))
    if isinstance(value, tuple | list):
        return "\n".join(_text(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def stored_values(fields: Sequence[FormField], view: BaseModel | None) -> dict[str, Any]:
    """What the inputs show for a stored view (None: a new one, its defaults): a check
    box's bool, a secret's "is set" bool, every other value as text."""
    out: dict[str, Any] = {}
    for f in fields:
        value = getattr(view, f.name) if view is not None else f.default
        if f.kind == "secret":
            out[f.name] = value is not None and bool(
                value.get_secret_value() if isinstance(value, SecretStr) else value
            )
        elif f.kind == "checkbox":
            out[f.name] = bool(value)
        else:
            out[f.name] = _text(value)
    return out


def posted_values(
    fields: Sequence[FormField], form: Mapping[str, str], stored: Mapping[str, Any]
) -> dict[str, Any]:
    """What the inputs show when a posted form comes back (refused, or re-rendered for a
    changed protocol): the posted texts; secrets only as whether one is stored."""
    out = dict(stored)
    for f in fields:
        if f.kind == "checkbox":
            out[f.name] = f.name in form
        elif f.kind != "secret" and f.name in form:
            out[f.name] = form[f.name]
    return out


def applies(f: FormField, current: Mapping[str, Any]) -> bool:
    """Whether ``f`` applies while the form holds ``current`` (texts by field name)."""
    return all(str(current.get(other, "")) in allowed for other, allowed in f.applies_to.items())


def shown(fields: Sequence[FormField], current: Mapping[str, Any]) -> list[FormField]:
    """The fields that apply to ``current``; a hidden field counts with its default for
    the fields after it (so a field that depends on a hidden one is hidden too)."""
    seen = dict(current)
    out = []
    for f in fields:
        if applies(f, seen):
            out.append(f)
        else:
            seen[f.name] = "" if f.default is None else str(f.default)
    return out


def grouped(fields: Sequence[FormField]) -> list[tuple[str, list[FormField]]]:
    """The fields by group, groups in the order they first appear."""
    groups: dict[str, list[FormField]] = {}
    for f in fields:
        groups.setdefault(f.group, []).append(f)
    return list(groups.items())


def _address(text: str) -> Any:
    name, address = parseaddr(text)
    # An unparseable entry goes to the model as it is, so its refusal names the field.
    return {"name": name, "address": address} if address else text


def parse_form(
    fields: Sequence[FormField], form: Mapping[str, str], current: Mapping[str, Any]
) -> dict[str, Any]:
    """The model's values from a posted form: every field that applies to ``current``
    from its input, every other one its default (a secret: None, which the write functions
    read as "keep the stored one" and a check as "none"). An empty secret input is left
    out, so the stored secret is kept and checked. Values stay texts where the model
    converts them."""
    visible = {f.name for f in shown(fields, current)}
    out: dict[str, Any] = {}
    for f in fields:
        raw = form.get(f.name, "")
        if f.name not in visible:
            out[f.name] = None if f.kind == "secret" else f.default
        elif f.kind == "checkbox":
            out[f.name] = f.name in form
        elif f.kind == "secret":
            if raw:
                out[f.name] = raw
        elif f.kind in ("lines", "addresses"):
            entries = [line.strip() for line in raw.splitlines() if line.strip()]
            out[f.name] = [_address(e) for e in entries] if f.kind == "addresses" else entries
        elif not raw.strip():
            out[f.name] = "" if f.required else f.default
        elif f.kind == "address":
            out[f.name] = _address(raw.strip())
        else:
            out[f.name] = raw.strip()
    return out


@dataclass(frozen=True)
class Checked:
    """A posted form checked by the model: its values (typed) or the refusals by field
    (``""``: the model as a whole)."""

    values: dict[str, Any]
    errors: dict[str, str]


def check(model: type[BaseModel], data: Mapping[str, Any], names: Iterable[str]) -> Checked:
    """Validate ``data`` with ``model``; on success the typed values of ``names`` (secrets
    as given, to be stored), else each refusal under the field it names."""
    try:
        view = model.model_validate(dict(data))
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for err in exc.errors():
            where = str(err["loc"][0]) if err["loc"] and err["loc"][0] in data else ""
            message = str(err["msg"]).removeprefix("Value error, ")
            errors[where] = f"{errors[where]}; {message}" if where in errors else message
        return Checked(values={}, errors=errors)
    values: dict[str, Any] = {}
    for name in names:
        value = getattr(view, name)
        if isinstance(value, SecretStr):
            values[name] = value.get_secret_value()
        elif isinstance(value, BaseModel):
            values[name] = value.model_dump(mode="json")
        elif isinstance(value, tuple):
            values[name] = [
                v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value
            ]
        elif isinstance(value, date):
            values[name] = value.isoformat()
        else:
            values[name] = value
    return Checked(values=values, errors={})


def texts(form: Mapping[str, Any]) -> dict[str, str]:
    """The text fields of a posted form (uploads left out; a repeated name: its last)."""
    return {k: v for k, v in form.items() if isinstance(v, str)}
