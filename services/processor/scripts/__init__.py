"""Incoming-mail scripts: the context they share and how they are found.

A script is ``async def run(mail: ParsedMail, ctx: ScriptContext) -> None`` registered under
the entry-point group ``mailroom.incoming_scripts``. Scripts annotate ``ctx`` (a decision, a
note) and never call each other, so their order, given by the ``processor/incoming_scripts``
property, can change safely. A script refuses a mail by raising ``MailRejected``.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import entry_points
from typing import Literal, Protocol

from pydantic import BaseModel

from services.processor.parsing import ParsedMail
from shared.errors import Permanent
from shared.models.config import SystemConfig

ENTRY_POINT_GROUP = "mailroom.incoming_scripts"

Action = Literal["new_case", "attach", "drop", "reject"]
Rule = Literal["conversation_id", "subject_pattern", "references", "new"]


class Decision(BaseModel):
    """What happens to a mail, which rule decided it, and why (for operators)."""

    action: Action
    rule: Rule | None = None
    case_number: int | None = None
    reason: str


class CaseLookup(Protocol):
    """What scripts may ask about existing cases."""

    async def case_exists(self, number: int) -> bool:
        """True when case ``number`` exists."""
        ...

    async def case_of_message_ids(self, message_ids: list[str]) -> int | None:
        """The case holding any of these Message-IDs."""
        ...

    async def case_of_conversation(self, conversation: str) -> int | None:
        """The case a conversation id belongs to."""
        ...

    async def participants(self, number: int) -> set[str]:
        """Lower-case addresses that wrote to or were written to by case ``number``."""
        ...

    async def automatic_answers_since(self, address: str, since: datetime) -> int:
        """How many automatic answers went to ``address`` since ``since``."""
        ...


@dataclass
class ScriptContext:
    """What a script sees besides the mail, and where it writes its findings."""

    config: SystemConfig
    cases: CaseLookup
    decision: Decision | None = None
    notes: list[str] = field(default_factory=list)
    acknowledge: bool = True
    """False once a script decided the mail must not be answered automatically."""
    omit_attachments: bool = False
    """True when the mail is over the size limit: attach it without its attachments."""
    bounced_message_id: str | None = None
    """The Message-ID of our own mail this bounce reports on."""


Script = Callable[[ParsedMail, ScriptContext], Awaitable[None]]


@functools.cache
def load_script(name: str) -> Script:
    """The script registered under ``name``; Permanent when none is."""
    for ep in entry_points(group=ENTRY_POINT_GROUP, name=name):
        script: Script = ep.load()
        return script
    raise Permanent(f"incoming-mail script {name!r} is not installed")
