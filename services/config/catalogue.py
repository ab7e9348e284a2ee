"""The property catalogue: every property with its type, default, description and whether it
is secret, read from the typed views' pydantic fields (never a second list to keep in step).

Names are ``module/key``. Field modules (``settings``, ``addresses``, ``processor``, …, see
``FIELD_MODULES``) have one property per field. The object modules hold one document per
object, so their properties are named by object and field: ``outgoing/smtp.host`` and
``incoming.accounts/<account>.port`` (an account name may contain dots; the field is what
follows the last one). Setting or resetting such a property changes that one field of the
object and leaves the others alone; ``name`` is not a property (rename the account).

Secrets are write-only: the catalogue shows whether one is set, never its value.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import to_jsonable_python

from services.config.properties import delete_property, set_fields, set_property
from shared.config_views import (
    ACCOUNTS_MODULE,
    FIELD_MODULES,
    OUTGOING_KEY,
    OUTGOING_MODULE,
    SECRET_FIELDS,
)
from shared.errors import ConfigRejected, NotFound
from shared.models.config import IncomingAccount, OutgoingConnection, SystemConfig
from shared.runtime import Runtime

MODULES: tuple[str, ...] = (*FIELD_MODULES, OUTGOING_MODULE, ACCOUNTS_MODULE)


class PropertyInfo(BaseModel):
    """What a property is: its type, default and meaning."""

    module: str
    key: str
    type: str
    default: Any = None
    required: bool = False
    """No default: an object cannot be stored without it."""
    description: str
    secret: bool


class PropertyState(PropertyInfo):
    """A property with its current value (``None`` for a secret: see ``secret_set``)."""

    value: Any = None
    is_set: bool
    """Stored explicitly; otherwise the default applies."""
    secret_set: bool | None = None
    """For secrets only: whether a value is stored."""


def _type_name(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> str:
    """A short, readable type from a field's JSON schema (``integer (1..65535) | null``)."""
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return name if name in defs else "object"
    if "anyOf" in schema:
        return " | ".join(_type_name(part, defs) for part in schema["anyOf"])
    if "enum" in schema:
        return "one of " + ", ".join(str(v) for v in schema["enum"])
    if "const" in schema:
        return repr(schema["const"])
    kind = str(schema.get("type", "any"))
    if kind == "array":
        return f"list of {_type_name(schema.get('items', {}), defs)}"
    if schema.get("format") == "password":
        return "secret string"
    if "format" in schema:
        kind = f"{kind} ({schema['format']})"
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None or high is not None:
        kind += f" ({'' if low is None else low}..{'' if high is None else high})"
    length = schema.get("maxLength")
    if length is not None:
        kind += f" (at most {length} characters)"
    return kind


def _is_secret(name: str, field: FieldInfo) -> bool:
    return name in SECRET_FIELDS or SecretStr in (field.annotation, *_args(field.annotation))


def _args(annotation: Any) -> tuple[Any, ...]:
    return tuple(getattr(annotation, "__args__", ()))


@functools.cache
def _model_infos(model: type[BaseModel], module: str) -> dict[str, PropertyInfo]:
    """The entries of ``model``'s fields, keyed by field name; built once per model (its JSON
    schema is not cheap, and a listing needs it for every account)."""
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    infos: dict[str, PropertyInfo] = {}
    for name, field in model.model_fields.items():
        if name == "name" and model is IncomingAccount:
            continue
        required = field.is_required()
        default = None if required else field.get_default(call_default_factory=True)
        infos[name] = PropertyInfo(
            module=module,
            key=name,
            type=_type_name(schema["properties"][name], defs),
            default=to_jsonable_python(default),
            required=required,
            description=field.description or "",
            secret=_is_secret(name, field),
        )
    return infos


def _infos(model: type[BaseModel], module: str, prefix: str) -> dict[str, PropertyInfo]:
    return {
        name: info.model_copy(update={"key": f"{prefix}{name}"}, deep=True)
        for name, info in _model_infos(model, module).items()
    }


def _split(module: str, key: str, config: SystemConfig) -> tuple[type[BaseModel], str, str]:
    """The model, the object key (empty for field modules) and the field a name refers to."""
    if module in FIELD_MODULES:
        return FIELD_MODULES[module], "", key
    if module == OUTGOING_MODULE:
        obj, _, field = key.partition(".")
        if obj != OUTGOING_KEY or not field:
            raise ConfigRejected(
                f"unknown property {module}/{key}: the outgoing connection's properties are "
                f"named {OUTGOING_KEY}.<field>, e.g. {OUTGOING_KEY}.host"
            )
        return OutgoingConnection, OUTGOING_KEY, field
    if module == ACCOUNTS_MODULE:
        account, _, field = key.rpartition(".")
        if not account:
            raise ConfigRejected(
                f"unknown property {module}/{key}: account properties are named "
                "<account>.<field>, e.g. support.host"
            )
        if account not in config.accounts:
            known = ", ".join(sorted(config.accounts)) or "none"
            raise NotFound(f"no account {account!r} for property {module}/{key}; accounts: {known}")
        return IncomingAccount, account, field
    raise ConfigRejected(f"unknown module {module!r}; known modules: {', '.join(MODULES)}")


def describe(module: str, key: str, config: SystemConfig) -> PropertyInfo:
    """The catalogue entry of ``module/key``; an unknown name is refused with the known ones."""
    model, obj, field = _split(module, key, config)
    infos = _infos(model, module, f"{obj}." if obj else "")
    if field not in infos:
        known = ", ".join(sorted(infos))
        raise ConfigRejected(
            f"unknown property {module}/{key}; known properties of {module}"
            f"{' (after ' + obj + '.)' if obj else ''}: {known}"
        )
    return infos[field]


def _state(
    info: PropertyInfo, config: SystemConfig, stored: Mapping[str, Any] | None
) -> PropertyState:
    """``info`` with the value the configuration holds; ``stored`` is the stored field module
    or object (None when nothing is stored)."""
    field = info.key.rpartition(".")[2]
    view: BaseModel | None
    if info.module in FIELD_MODULES:
        view = getattr(config, info.module)
    elif info.module == OUTGOING_MODULE:
        view = config.outgoing
    else:
        view = config.accounts.get(info.key.rpartition(".")[0])
    current = getattr(view, field) if view is not None else None
    is_set = stored is not None and field in stored and stored[field] is not None
    if info.secret:
        return PropertyState(**info.model_dump(), is_set=is_set, secret_set=current is not None)
    return PropertyState(**info.model_dump(), value=to_jsonable_python(current), is_set=is_set)


async def _stored(rt: Runtime, module: str, obj: str) -> dict[str, Any] | None:
    if module in FIELD_MODULES:
        props = await rt.store.properties.all()
        return {p.key: p.value for p in props if p.module == module}
    prop = await rt.store.properties.get(module=module, key=obj)
    return dict(prop.value) if prop is not None and isinstance(prop.value, Mapping) else None


async def list_catalogue(rt: Runtime, *, module: str | None = None) -> list[PropertyState]:
    """Every property (of ``module``, when given) with its current value."""
    if module is not None and module not in MODULES:
        raise ConfigRejected(f"unknown module {module!r}; known modules: {', '.join(MODULES)}")
    config = rt.config
    props = await rt.store.properties.all()
    stored: dict[tuple[str, str], dict[str, Any]] = {}
    for p in props:
        if p.module in FIELD_MODULES:
            stored.setdefault((p.module, ""), {})[p.key] = p.value
        elif isinstance(p.value, Mapping):
            stored[(p.module, p.key)] = dict(p.value)
    objects: list[tuple[str, type[BaseModel], str]] = [
        (m, model, "") for m, model in FIELD_MODULES.items()
    ]
    objects.append((OUTGOING_MODULE, OutgoingConnection, OUTGOING_KEY))
    objects += [(ACCOUNTS_MODULE, IncomingAccount, name) for name in sorted(config.accounts)]
    out: list[PropertyState] = []
    for mod, model, obj in objects:
        if module is not None and mod != module:
            continue
        for info in _infos(model, mod, f"{obj}." if obj else "").values():
            out.append(_state(info, config, stored.get((mod, obj))))
    return out


async def get_catalogued(rt: Runtime, *, module: str, key: str) -> PropertyState:
    """One property with its current value."""
    info = describe(module, key, rt.config)
    obj = key.rpartition(".")[0] if module not in FIELD_MODULES else ""
    return _state(info, rt.config, await _stored(rt, module, obj))


async def set_catalogued(
    rt: Runtime, *, module: str, key: str, value: Any, who: str, force: bool = False
) -> int:
    """Set one property (validated, audited, broadcast); returns the new version.

    A whole object (``outgoing/smtp``, ``incoming.accounts/<name>``) may also be set at once
    as a raw property; every other name must be in the catalogue. ``force`` overrides the
    guards (see ``services.config.guards``).
    """
    if (module == ACCOUNTS_MODULE and "." not in key) or (module, key) == (OUTGOING_MODULE, "smtp"):
        return await set_property(rt, module=module, key=key, value=value, who=who, force=force)
    describe(module, key, rt.config)
    if module in FIELD_MODULES:
        return await set_fields(rt, module=module, values={key: value}, who=who, force=force)
    obj, _, field = key.rpartition(".")
    merged = {**(await _stored(rt, module, obj) or {}), field: value}
    return await set_property(rt, module=module, key=obj, value=merged, who=who, force=force)


async def reset_catalogued(
    rt: Runtime, *, module: str, key: str, who: str, force: bool = False
) -> int:
    """Put one property back to its default (audited and broadcast when it was set); returns
    the configuration version, unchanged when the default applied already."""
    describe(module, key, rt.config)
    if module in FIELD_MODULES:
        if await rt.store.properties.get(module=module, key=key) is None:
            return rt.config.version
        return await delete_property(rt, module=module, key=key, who=who, force=force)
    obj, _, field = key.rpartition(".")
    stored = await _stored(rt, module, obj)
    if stored is None or field not in stored:
        return rt.config.version
    rest = {k: v for k, v in stored.items() if k != field}
    return await set_property(rt, module=module, key=obj, value=rest, who=who, force=force)
