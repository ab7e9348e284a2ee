"""A form of a typed settings view (a field module such as ``settings`` or ``addresses``,
or the outgoing connection): what it shows and how it is saved, through the functions the
API routes call (``set_fields``, ``set_outgoing``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from services.config.properties import set_fields, set_outgoing
from services.config.web.auth import Posted
from services.config.web.model_form import (
    FormField,
    check,
    grouped,
    parse_form,
    posted_values,
    shown,
    stored_values,
    texts,
)
from shared.errors import ConfigRejected
from shared.runtime import Runtime


@dataclass(frozen=True)
class Section:
    """One form: the view declaring it and the field module it is stored in (None: the
    outgoing connection, stored by ``set_outgoing``)."""

    key: str
    heading: str
    model: type[BaseModel]
    module: str | None
    fields: tuple[FormField, ...]

    def view(self, rt: Runtime) -> BaseModel | None:
        """The stored view (None: no outgoing connection yet)."""
        return rt.config.outgoing if self.module is None else getattr(rt.config, self.module)

    def stored(self, rt: Runtime) -> dict[str, Any]:
        """What the inputs show for the stored view."""
        return stored_values(self.fields, self.view(rt))

    def posted(self, rt: Runtime, posted: Posted) -> dict[str, Any]:
        """What the inputs show for a posted form (secrets: whether one is stored)."""
        return posted_values(self.fields, texts(posted.data), self.stored(rt))

    def shown(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The template's view of the form with ``values``: fields that apply, by group."""
        fields = shown(self.fields, values)
        return {"fields": fields, "groups": grouped(fields)}


def _changed(section: Section, rt: Runtime, values: Mapping[str, Any]) -> dict[str, Any]:
    """The values that differ from the stored ones (only they are written and audited)."""
    view = section.view(rt)
    stored = view.model_dump(mode="json") if view is not None else {}
    return {k: v for k, v in values.items() if k not in stored or stored[k] != v}


async def save_section(section: Section, rt: Runtime, posted: Posted) -> dict[str, str]:
    """Check the posted form with the view, then write it as the API would; the refusals
    by field ("": the form as a whole), empty when it was saved."""
    form = texts(posted.data)
    data = parse_form(section.fields, form, section.posted(rt, posted))
    view = section.view(rt)
    checked = check(section.model, {**(view.model_dump() if view else {}), **data}, data)
    if checked.errors:
        return checked.errors
    who = posted.visitor.name
    try:
        if section.module is None:
            await set_outgoing(rt, fields=checked.values, who=who)
        elif changes := _changed(section, rt, checked.values):
            await set_fields(rt, module=section.module, values=changes, who=who)
    except ConfigRejected as refused:
        return {"": str(refused)}
    return {}
