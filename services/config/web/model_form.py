"""A console form declared by a pydantic model: its fields become form fields (title, help,
input kind, choices, secret) and the posted strings become the model's values again.

A field is read from the model alone, through ``shared.models.field_specs`` (the reader the
API schemas and the CLI options use too): title, help (the attribute docstring), input kind
(a ``Literal`` is a drop-down, ``bool`` a check box, ``SecretStr`` a write-only secret, a
tuple one entry per line), group, placeholder and ``applies_to`` (``{"protocol": ["IMAP",
"IMAPS"]}``: the field is shown only while ``protocol`` has one of those values). A page may
override the same keys as ``hints`` (a friendlier title, another group).

Secrets are write-only: the form shows whether one is set and takes a new value; an empty
input keeps the stored one. A field that does not apply to the form's current values is not
shown and takes its default, so a value that only made sense for the other protocol cannot
block a save.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from email.utils import formataddr, parseaddr
from typing import Any, Literal

from pydantic import BaseModel, SecretStr, ValidationError

from services.config.errors import Conflict
from shared.errors import ConfigRejected
from shared.models.field_specs import FieldSpec, field_specs
from shared.models.field_specs import Kind as SpecKind
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
    "starttls": "STARTTLS (CSM's TLS)",
    # Not plain "TLS": CSM calls STARTTLS "TLS"; this one is CSM's "SSL" (SMTPS, port 465).
    "tls": "TLS from the first byte (CSM's SSL)",
    "incoming": "Same as the incoming server",
    "own": "Own username and password",
    "all": "All mail in the folder",
    "new": "Only new mail",
    "since": "Mail since a date",
    "microsoft": "Microsoft 365",
    "google": "Google Workspace",
    "client_credentials": "App-only (client credentials)",
    "authorization_code": "Browser consent (auth. code)",
    "device_code": "Device code",
    "service_account": "Service account",
}
"""How a drop-down shows a model's choice; a choice not listed is shown as it is."""

HINT_KEYS = ("secret", "group", "title", "help", "placeholder", "applies_to", "multiline")
"""What a page may add to (or override of) a field's own declaration."""

_FORM_KINDS: Mapping[SpecKind, Kind] = {
    "text": "text",
    "number": "number",
    "bool": "checkbox",
    "choice": "select",
    "secret": "secret",
    "date": "date",
    "lines": "lines",
    "address": "address",
    "addresses": "addresses",
}


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
    multiline: bool = False
    """A secret pasted as several lines (a PEM, a JSON key): a text area, since a password
    input drops line breaks."""


def _form_field(spec: FieldSpec, meta: Mapping[str, Any]) -> FormField:
    """The input of one field (``shared.models.field_specs``), with a page's ``meta``."""
    kind = "secret" if meta.get("secret") else _FORM_KINDS[spec.kind]
    applies_to = meta.get("applies_to", spec.applies_to)
    return FormField(
        name=spec.name,
        title=str(meta.get("title") or spec.title),
        help=str(meta.get("help") or spec.description),
        kind=kind,
        required=spec.required and kind != "checkbox",
        default=spec.default,
        choices=tuple((c, CHOICE_LABELS.get(c, c)) for c in spec.choices),
        step="1" if spec.integer else "any",
        placeholder=str(meta.get("placeholder") or spec.placeholder),
        group=str(meta.get("group") or spec.group),
        applies_to={k: tuple(map(str, v)) for k, v in applies_to.items()},
        multiline=bool(meta.get("multiline")),
    )


def form_fields(
    model: type[BaseModel],
    *,
    exclude: Iterable[str] = (),
    hints: Mapping[str, Mapping[str, Any]] | None = None,
    order: Sequence[str] = (),
) -> tuple[FormField, ...]:
    """The form fields of ``model`` without ``exclude``: those named in ``order`` first, in
    that order, then the rest in declaration order. ``hints`` (by field name, keys of
    ``HINT_KEYS``) add to or override what the model's fields declare."""
    specs = {s.name: s for s in field_specs(model) if s.name not in set(exclude)}
    names = [*(n for n in order if n in specs), *(n for n in specs if n not in order)]
    found = [_form_field(specs[n], (hints or {}).get(n, {})) for n in names]
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


async def write_checked(
    checked: Checked, write: Callable[[dict[str, Any]], Awaitable[object]]
) -> int | None:
    """Write a checked form's values unless it has refusals; None once written, else the
    status its form page is answered with (409 for a taken name, 422 otherwise), the write's
    refusal added to ``checked.errors``."""
    if checked.errors:
        return 422
    try:
        await write(checked.values)
    except ConfigRejected as refused:
        checked.errors[""] = str(refused)
        return 409 if isinstance(refused, Conflict) else 422
    return None


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
