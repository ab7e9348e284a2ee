"""Guards: rules a configuration change may break only on purpose.

A typed view refuses what can never work (a bad port, a template the incoming pattern cannot
read). A guard refuses what works but is almost always a mistake with silent consequences,
such as a script order in which no script puts mail into cases: every reply would then open
a new case. Every write path builds the configuration as it would be after the change and
calls :func:`check_guards` with it: property writes (``settings set``, ``properties set``, the
API, the script verbs) in :func:`services.config.properties.check_change`, config import in
:func:`services.config.transfer.import_config`. A caller may override a guard with ``force``
(CLI ``--force``, API ``force=true``); the audit record of such a write says which refusal it
overrode.

A guard only looks at a change to the part of the configuration it watches, so a forced
state does not block unrelated writes (an account change), while every further change to the
watched part must be forced again as long as the rule stays broken.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Final

from shared.errors import ConfigRejected
from shared.models.config import SystemConfig

INCOMING_GROUP: Final = "mailroom.incoming_scripts"
MATCHES_CASES_ATTRIBUTE: Final = "MATCHES_CASES"
"""A module-level ``MATCHES_CASES = True`` in a script's module declares that the script puts
mail into cases (the built-in ``case_matcher`` does)."""


class GuardRefused(ConfigRejected):
    """A change a guard refuses; ``force`` writes it anyway."""


@dataclass(frozen=True)
class Guard:
    """One rule: what it watches, and why a configuration breaks it (None: it does not)."""

    name: str
    watches: Callable[[SystemConfig], Hashable]
    refusal: Callable[[SystemConfig], str | None]


@functools.cache
def matches_cases(name: str) -> bool:
    """Whether the incoming-mail script ``name`` declares that it puts mail into cases.

    The script's module is imported to read the declaration; a script that is not installed
    or does not import declares nothing (the processor could not run it either).
    """
    for ep in entry_points(group=INCOMING_GROUP, name=name):
        try:
            module = importlib.import_module(ep.module)
        except Exception:  # a broken third-party script declares nothing
            return False
        return getattr(module, MATCHES_CASES_ATTRIBUTE, False) is True
    return False


def _incoming_scripts(config: SystemConfig) -> Hashable:
    return config.processor.incoming_scripts


def no_case_matcher(
    config: SystemConfig, *, declares: Callable[[str], bool] = matches_cases
) -> str | None:
    """The refusal for a script order in which no enabled script puts mail into cases."""
    enabled = [s.name for s in config.processor.incoming_scripts if s.enabled]
    if any(declares(name) for name in enabled):
        return None
    return (
        "processor/incoming_scripts: no enabled script puts mail into cases (enabled: "
        f"{', '.join(enabled) or 'none'}), so every reply would open a new case. Keep "
        "case_matcher in the list and enabled (mailroom scripts enable case_matcher), or "
        "force the change if that is what you want (--force, API force=true)"
    )


GUARDS: Final[tuple[Guard, ...]] = (
    Guard(name="case_matching", watches=_incoming_scripts, refusal=no_case_matcher),
)


def check_guards(
    before: SystemConfig | None,
    after: SystemConfig,
    *,
    force: bool,
    guards: Sequence[Guard] = GUARDS,
) -> str | None:
    """Refuse (GuardRefused) a change from ``before`` (None: unknown) to ``after`` that breaks
    a guard, unless ``force``; returns the refusals a forced change overrode (None: none)."""
    refusals = [
        reason
        for guard in guards
        if before is None or guard.watches(before) != guard.watches(after)
        if (reason := guard.refusal(after)) is not None
    ]
    if not refusals:
        return None
    if not force:
        raise GuardRefused("; ".join(refusals))
    return "; ".join(refusals)
