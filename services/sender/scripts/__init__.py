"""Outgoing-mail scripts: how they are found and run.

A script is ``async def run(mail: OutgoingMail, ctx: OutgoingContext) -> OutgoingMail``
registered under the entry-point group ``mailroom.outgoing_scripts``. It returns the mail
to go on with (changed with ``model_copy(update=...)`` or unchanged), or raises
:class:`StopMail` to stop it. Order and enablement come from the ``sender/outgoing_scripts``
property. Scripts never call each other, so their order can change safely.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.metadata import entry_points

from pydantic import ValidationError

from shared.errors import Permanent
from shared.models.config import SystemConfig
from shared.models.messages import OutgoingMail
from shared.models.outgoing_config import OUTGOING_SCRIPTS_GROUP


class StopMail(Exception):
    """Raised by a script that decides the mail must not go out (a decision, not a failure:
    the mail is marked stopped and does not go to the desk)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class OutgoingContext:
    """What a script sees besides the mail."""

    config: SystemConfig


Script = Callable[[OutgoingMail, OutgoingContext], Awaitable[OutgoingMail]]


@functools.cache
def load_script(name: str) -> Script:
    """The script registered as ``name``; Permanent when it is not installed."""
    found = [ep for ep in entry_points(group=OUTGOING_SCRIPTS_GROUP) if ep.name == name]
    if not found:
        raise Permanent(f"outgoing-mail script {name!r} is not installed")
    script: Script = found[0].load()
    return script


@dataclass(frozen=True)
class Stopped:
    """A script stopped the mail."""

    script: str
    reason: str

    def __str__(self) -> str:
        return f"stopped by outgoing-mail script {self.script!r}: {self.reason}"


async def run_scripts(
    mail: OutgoingMail, config: SystemConfig, *, load: Callable[[str], Script] = load_script
) -> OutgoingMail | Stopped:
    """The mail after every enabled script, or who stopped it and why.

    A changed mail is validated again (a script cannot smuggle CR/LF into a header) and
    must keep its ``mail_id`` (the idempotency key). A script that fails is Permanent: the
    mail goes to the desk rather than out unchecked. ``load`` finds a script by name.
    """
    ctx = OutgoingContext(config=config)
    mail_id = mail.mail_id
    for setting in config.sender.outgoing_scripts:
        if not setting.enabled:
            continue
        try:
            changed = await load(setting.name)(mail, ctx)
        except StopMail as stop:
            return Stopped(setting.name, stop.reason)
        except Permanent:
            raise
        except Exception as exc:
            raise Permanent(
                f"outgoing-mail script {setting.name!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
        if changed is mail:
            # Returned as given: the model is frozen, nothing was replaced, nothing to check
            # again (validating the addresses is most of a mail's build cost, and most
            # scripts pass most mails through).
            continue
        if changed.mail_id != mail_id:
            raise Permanent(f"outgoing-mail script {setting.name!r} changed the mail_id")
        try:
            mail = OutgoingMail.model_validate(changed.model_dump())
        except ValidationError as exc:
            raise Permanent(
                f"outgoing-mail script {setting.name!r} made the mail invalid: "
                f"{exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}"
            ) from None
    return mail
