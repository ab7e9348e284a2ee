"""Incoming- and outgoing-mail scripts as an operator handles them: list, enable, disable, move.

Both kinds are an ordered list of (name, enabled) in one field property,
``processor/incoming_scripts`` and ``sender/outgoing_scripts``, of scripts registered as entry
points (``mailroom.incoming_scripts``, ``mailroom.outgoing_scripts``). One implementation
serves both: each verb changes the configured list with a pure function and writes the whole
list through :func:`services.config.properties.set_fields`, so validation, guards (no
incoming script left that puts mail into cases), audit and broadcast are those of every
other write.

Decisions where nobody said otherwise:

- A script installed but not in the list does not run. ``list`` shows it without a position;
  ``enable`` adds it at the bottom (``move`` then places it); ``move`` puts it at the place
  given, disabled (moving does not start a script); ``disable`` leaves the list as it is.
- A verb that changes nothing (enabling an enabled script) writes nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.config.guards import matches_cases
from services.config.properties import set_fields
from shared.errors import ConfigRejected, NotFound
from shared.runtime import Runtime

KindName = Literal["incoming", "outgoing"]


@dataclass(frozen=True)
class ScriptKind:
    """Where the scripts of one kind are registered and configured."""

    name: KindName
    group: str
    """The entry-point group the scripts are registered in."""
    module: str
    key: str
    """The field property holding the list: ``module/key``."""

    @property
    def label(self) -> str:
        """``incoming-mail script``, for messages."""
        return f"{self.name}-mail script"


KINDS: Final[dict[KindName, ScriptKind]] = {
    "incoming": ScriptKind(
        "incoming", "mailroom.incoming_scripts", "processor", "incoming_scripts"
    ),
    "outgoing": ScriptKind("outgoing", "mailroom.outgoing_scripts", "sender", "outgoing_scripts"),
}


@dataclass(frozen=True)
class Slot:
    """One entry of the configured list."""

    name: str
    enabled: bool


class Placement(BaseModel):
    """Where to move a script: before or after another one, or to the top or bottom."""

    model_config = ConfigDict(extra="forbid")
    before: str | None = Field(default=None, max_length=100)
    after: str | None = Field(default=None, max_length=100)
    to: Literal["top", "bottom"] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [f for f in ("before", "after", "to") if getattr(self, f) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of before, after or to (top|bottom)"
                + (f", not {' and '.join(given)}" if given else "")
            )
        return self


class Installed(BaseModel):
    """An installed script: the distribution that registered its entry point."""

    package: str | None
    package_version: str | None


class ScriptEntry(BaseModel):
    """A script as ``list`` shows it."""

    name: str
    position: int | None
    """1-based place in the order; None: installed but not in the list, so it does not run."""
    enabled: bool
    installed: bool
    """False for a listed script whose entry point is gone (the processor cannot run it)."""
    package: str | None
    """The distribution that registered the entry point."""
    package_version: str | None
    matches_cases: bool | None
    """Incoming scripts: declares that it puts mail into cases (``case_matcher``)."""


class ScriptList(BaseModel):
    """The scripts of one kind in their order, then those installed but not listed."""

    kind: KindName
    property: str
    version: int
    scripts: list[ScriptEntry]


def installed_scripts(kind: ScriptKind) -> dict[str, Installed]:
    """Every script registered for ``kind``, by name (the first registration of a name, as
    the services load it)."""
    found: dict[str, Installed] = {}
    for ep in entry_points(group=kind.group):
        dist = ep.dist
        found.setdefault(
            ep.name,
            Installed(
                package=dist.name if dist else None,
                package_version=dist.version if dist else None,
            ),
        )
    return found


def _unknown(kind: ScriptKind, field: str, name: str, known: Collection[str]) -> str:
    return f"{field}: no {kind.label} {name!r}; known: {', '.join(sorted(known)) or 'none'}"


def set_enabled(
    slots: Sequence[Slot],
    name: str,
    *,
    enabled: bool,
    kind: ScriptKind,
    installed: Collection[str],
) -> tuple[Slot, ...]:
    """The list with ``name`` enabled or disabled; an installed script not in the list is
    added at the bottom when enabled. NotFound for a name neither listed nor installed."""
    if any(s.name == name for s in slots):
        return tuple(Slot(s.name, enabled) if s.name == name else s for s in slots)
    if name not in installed:
        raise NotFound(_unknown(kind, "name", name, {*installed, *(s.name for s in slots)}))
    return (*slots, Slot(name, True)) if enabled else tuple(slots)


def move(
    slots: Sequence[Slot],
    name: str,
    place: Placement,
    *,
    kind: ScriptKind,
    installed: Collection[str],
) -> tuple[Slot, ...]:
    """The list with ``name`` at ``place``; an installed script not in the list is put there
    disabled. NotFound for an unknown ``name``, ConfigRejected for a bad place."""
    listed = {s.name for s in slots}
    if name not in listed and name not in installed:
        raise NotFound(_unknown(kind, "name", name, {*installed, *listed}))
    moving = next((s for s in slots if s.name == name), Slot(name, False))
    rest = [s for s in slots if s.name != name]
    if place.to is not None:
        return (moving, *rest) if place.to == "top" else (*rest, moving)
    field, target = ("before", place.before) if place.before is not None else ("after", place.after)
    assert target is not None  # Placement holds exactly one of before, after, to
    if target == name:
        raise ConfigRejected(f"{field}: a script cannot move {field} itself")
    index = next((i for i, s in enumerate(rest) if s.name == target), None)
    if index is None and target in installed:
        raise ConfigRejected(
            f"{field}: {kind.label} {target!r} is not in the list (it does not run); "
            "enable or move it first"
        )
    if index is None:
        raise ConfigRejected(_unknown(kind, field, target, listed - {name}))
    at = index if field == "before" else index + 1
    return (*rest[:at], moving, *rest[at:])


def configured(rt: Runtime, kind: ScriptKind) -> tuple[Slot, ...]:
    """The configured list of ``kind``, as the runtime has loaded it."""
    settings = getattr(rt.config, kind.module)
    return tuple(Slot(s.name, s.enabled) for s in getattr(settings, kind.key))


def entries(
    slots: Sequence[Slot], kind: ScriptKind, installed: dict[str, Installed]
) -> list[ScriptEntry]:
    """What ``list`` shows: the listed scripts in order, then the installed unlisted ones."""
    names: list[tuple[int | None, str, bool]] = [
        (i + 1, s.name, s.enabled) for i, s in enumerate(slots)
    ]
    listed = {s.name for s in slots}
    names += [(None, n, False) for n in sorted(installed) if n not in listed]
    out = []
    for position, name, enabled in names:
        found = installed.get(name)
        out.append(
            ScriptEntry(
                name=name,
                position=position,
                enabled=enabled,
                installed=found is not None,
                package=found.package if found else None,
                package_version=found.package_version if found else None,
                matches_cases=matches_cases(name) if kind.name == "incoming" else None,
            )
        )
    return out


async def list_scripts(rt: Runtime, kind: ScriptKind) -> ScriptList:
    """The scripts of ``kind``: order, enablement, source package."""
    return ScriptList(
        kind=kind.name,
        property=f"{kind.module}/{kind.key}",
        version=rt.config.version,
        scripts=entries(configured(rt, kind), kind, installed_scripts(kind)),
    )


async def _write(
    rt: Runtime, kind: ScriptKind, slots: Sequence[Slot], *, who: str, force: bool
) -> ScriptList:
    if tuple(slots) != configured(rt, kind):
        value = [{"name": s.name, "enabled": s.enabled} for s in slots]
        await set_fields(rt, module=kind.module, values={kind.key: value}, who=who, force=force)
    return await list_scripts(rt, kind)


async def enable_script(
    rt: Runtime, kind: ScriptKind, name: str, *, enabled: bool, who: str, force: bool = False
) -> ScriptList:
    """Enable or disable one script (validated, guarded, audited, broadcast)."""
    slots = set_enabled(
        configured(rt, kind), name, enabled=enabled, kind=kind, installed=installed_scripts(kind)
    )
    return await _write(rt, kind, slots, who=who, force=force)


async def move_script(
    rt: Runtime, kind: ScriptKind, name: str, place: Placement, *, who: str, force: bool = False
) -> ScriptList:
    """Move one script before or after another, or to the top or bottom."""
    slots = move(configured(rt, kind), name, place, kind=kind, installed=installed_scripts(kind))
    return await _write(rt, kind, slots, who=who, force=force)
