"""The API's schemas of a stored view, derived from its fields: create, update and public.

The stored model (``IncomingAccount``, ``OutgoingConnection``) declares each field once; the
schemas here take its type, default, constraints, title and description, so that a field
added to the model is in the API at once (``tests/unit/config/test_account_fields.py``).

- **create**: every field, required where the model requires it, defaults as the model's;
- **update**: every field optional, an omitted one is kept (``exclude_unset``);
- **public**: every field, secrets only as ``<name>_set`` (set / not set), never the value.

The request schemas check types, choices, bounds and lengths only; the field validators and
the model's own checks (a host without spaces, basic auth needs a password) run when the
write builds the stored view, whose refusal names the property and field (``config_rejected``).
A day travels as text (``YYYY-MM-DD``), as it is stored.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Annotated, Any, ClassVar, Literal, Optional, Self, get_origin

from annotated_types import BaseMetadata, MaxLen
from pydantic import BaseModel, ConfigDict, EmailStr, Field, SecretStr, create_model
from pydantic.fields import FieldInfo

from shared.models.field_specs import field_specs, unwrap

_DAY = Annotated[str, MaxLen(10)]


class RequestBody(BaseModel):
    """A request body: unknown fields are refused, naming them."""

    model_config = ConfigDict(extra="forbid")


class PublicView(BaseModel):
    """A stored view as the API shows it: secrets as set / not set, some fields resolved."""

    resolved: ClassVar[Mapping[str, str]] = {}
    """Fields shown as the view's property of that name (``port``: ``effective_port``)."""

    @classmethod
    def of(cls, view: BaseModel) -> Self:
        """The public view of ``view``: secrets replaced by flags, resolved fields resolved."""
        secrets = secret_fields(type(view))
        data = view.model_dump(exclude=set(secrets))
        data.update({f"{name}_set": getattr(view, name) is not None for name in secrets})
        data.update({name: getattr(view, prop) for name, prop in cls.resolved.items()})
        return cls(**data)


@functools.cache
def secret_fields(model: type[BaseModel]) -> frozenset[str]:
    """The names of ``model``'s secret fields (read once per model: every listing asks)."""
    return frozenset(s.name for s in field_specs(model) if s.secret)


def _wire(annotation: Any, *, public: bool) -> Any:
    """The type a field has on the wire: its base type without the model's validators."""
    inner, nullable = unwrap(annotation)
    base: Any
    if inner is date:
        base = date if public else _DAY
    elif get_origin(inner) is Literal or inner in (bool, int, float, SecretStr):
        base = inner
    elif get_origin(inner) is tuple:
        base = tuple[str, ...]  # texts (scopes), a JSON list; items keep the view's checks
    elif inner is EmailStr or (isinstance(inner, type) and issubclass(inner, str)):
        base = str  # the stored view validates the address
    else:
        raise TypeError(f"no wire type for {inner!r}")
    return Optional[base] if nullable else base  # noqa: UP045 (a runtime-built type)


def _constrained(annotation: Any, info: FieldInfo) -> Any:
    # Bounds and lengths (annotated_types) carry over; validators stay with the stored view.
    bounds = [m for m in info.metadata if isinstance(m, BaseMetadata)]
    return Annotated[annotation, *bounds] if bounds else annotation


def _info(info: FieldInfo, default: Any) -> Any:
    return Field(default, title=info.title, description=info.description)


def create_schema(model: type[BaseModel], name: str, doc: str) -> type[RequestBody]:
    """The body that creates a ``model``: every field, the model's defaults."""
    fields: dict[str, Any] = {
        field: (
            _constrained(_wire(info.annotation, public=False), info),
            _info(info, ... if info.is_required() else info.get_default()),
        )
        for field, info in model.model_fields.items()
    }
    return create_model(name, __base__=RequestBody, __doc__=doc, **fields)


def update_schema(
    model: type[BaseModel], name: str, doc: str, *, exclude: Iterable[str] = ()
) -> type[RequestBody]:
    """The body that changes a ``model``: every field but ``exclude``, each optional."""
    left_out = set(exclude)
    fields: dict[str, Any] = {
        field: (
            _constrained(Optional[_wire(info.annotation, public=False)], info),  # noqa: UP045
            _info(info, None),
        )
        for field, info in model.model_fields.items()
        if field not in left_out
    }
    return create_model(name, __base__=RequestBody, __doc__=doc, **fields)


def public_schema(
    model: type[BaseModel],
    name: str,
    doc: str,
    *,
    resolved: Mapping[str, tuple[Any, str]] | None = None,
) -> type[PublicView]:
    """What the API shows of a ``model``: every field, a secret as ``<name>_set``;
    ``resolved`` maps a field to its shown type and the view's property giving its value."""
    shown = resolved or {}
    fields: dict[str, Any] = {}
    for spec, (field, info) in zip(field_specs(model), model.model_fields.items(), strict=True):
        if spec.secret:
            fields[f"{field}_set"] = (bool, Field(description=f"Whether {field} is set."))
        elif field in shown:
            fields[field] = (shown[field][0], Field(title=info.title, description=info.description))
        else:
            annotation = _wire(info.annotation, public=True)
            fields[field] = (annotation, Field(title=info.title, description=info.description))
    schema = create_model(name, __base__=PublicView, __doc__=doc, **fields)
    schema.resolved = {field: prop for field, (_, prop) in shown.items()}
    return schema
