"""What a write does to list settings: added, removed, changed and reordered items.

A list property is written whole, so ``settings set processor incoming_scripts=[...]`` with one
entry drops every other one. Before such a write the CLI shows this diff, so what goes (or
moves) is said before it happens. Items are told apart by their ``address`` (mail
addresses), else their ``name`` (scripts), else their whole value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from shared.config_views import FIELD_MODULES
from shared.models.config import SystemConfig


class ListChange(BaseModel):
    """How one list property changes."""

    setting: str
    """``module/key``."""
    added: list[str]
    removed: list[str]
    changed: list[str]
    """``item: field old → new`` for an item kept with other values."""
    order_before: list[str]
    """The kept items in their old order (empty when the order does not change)."""
    order_after: list[str]
    """The kept items in their new order (empty when the order does not change)."""

    @property
    def empty(self) -> bool:
        """True when the list stays as it is."""
        return not (self.added or self.removed or self.changed or self.order_before)

    def lines(self) -> list[str]:
        """The change as an operator reads it, one line per kind of change."""
        out = [f"{self.setting}:"]
        out += [f"  + {item}" for item in self.added]
        out += [f"  - {item}" for item in self.removed]
        out += [f"  ~ {item}" for item in self.changed]
        if self.order_before:
            out.append(f"  order: {', '.join(self.order_before)} → {', '.join(self.order_after)}")
        if self.empty:
            out.append("  (unchanged)")
        return out


def _identity(item: Any) -> str:
    if isinstance(item, Mapping):
        for field in ("address", "name"):
            if isinstance(item.get(field), str):
                return str(item[field])
    return json.dumps(item, sort_keys=True)


def _describe(item: Any) -> str:
    # An added script reads "x (disabled)", an address "Name <a@b>", other items as JSON.
    if isinstance(item, Mapping) and "name" in item and "enabled" in item:
        return f"{item['name']}{'' if item['enabled'] else ' (disabled)'}"
    if isinstance(item, Mapping) and "address" in item:
        return f"{item.get('name') or ''} <{item['address']}>".strip()
    return item if isinstance(item, str) else json.dumps(item, sort_keys=True)


def _field_changes(name: str, old: Any, new: Any) -> list[str]:
    if not (isinstance(old, Mapping) and isinstance(new, Mapping)):
        return [f"{name}: {json.dumps(old)} → {json.dumps(new)}"]
    return [
        f"{name}: {field} {json.dumps(old.get(field))} → {json.dumps(new.get(field))}"
        for field in sorted({*old, *new})
        if old.get(field) != new.get(field)
    ]


def diff_list(prop: str, old: Sequence[Any], new: Sequence[Any]) -> ListChange:
    """The change from ``old`` to ``new`` (JSON-like items) of the list property ``prop``."""
    old_by = {_identity(i): i for i in old}
    new_by = {_identity(i): i for i in new}
    kept_old = [k for k in old_by if k in new_by]
    kept_new = [k for k in new_by if k in old_by]
    reordered = kept_old != kept_new
    return ListChange(
        setting=prop,
        added=[_describe(i) for k, i in new_by.items() if k not in old_by],
        removed=[_describe(i) for k, i in old_by.items() if k not in new_by],
        changed=[
            line
            for k in kept_new
            if old_by[k] != new_by[k]
            for line in _field_changes(k, old_by[k], new_by[k])
        ],
        order_before=kept_old if reordered else [],
        order_after=kept_new if reordered else [],
    )


def planned_list_changes(
    config: SystemConfig, module: str, values: Mapping[str, Any]
) -> list[ListChange]:
    """How writing ``values`` into the field module ``module`` would change its list
    settings, compared with ``config``. Values are read as the module's view reads them (so
    ``[{"name": "x"}]`` shows as enabled); nothing is listed when they do not validate (the
    write then says why) or the module is not a field module."""
    model = FIELD_MODULES.get(module)
    if model is None:
        return []
    current = getattr(config, module).model_dump(mode="json")
    try:
        planned = model.model_validate({**current, **values}).model_dump(mode="json")
    except ValidationError:
        return []
    return [
        diff_list(f"{module}/{key}", current[key], planned[key])
        for key in values
        if isinstance(current.get(key), list) and isinstance(planned.get(key), list)
    ]
