"""Run the enabled incoming-mail scripts in their configured order."""

from __future__ import annotations

from services.processor.parsing import ParsedMail
from services.processor.scripts import Decision, ScriptContext, load_script
from shared.errors import MailRejected
from shared.models.config import SystemConfig

ACKNOWLEDGEMENT_GUARDS = frozenset({"rate_limit", "suppressed"})
"""Scripts that only decide whether a new case's acknowledgement may go out. They run after
the others (in their configured order among themselves), and only when the mail opens a new
case that may be acknowledged at all (:func:`may_acknowledge`): a follow-up never is, so
their lookups (one MongoDB read each) and their notes would be for nothing. No other script
reads what they set (``ctx.acknowledge``), so for a new case the outcome is the one their
place in the list gave."""


async def run_scripts(mail: ParsedMail, ctx: ScriptContext) -> Decision:
    """The decision for ``mail``; a script's MailRejected propagates to the caller.

    Without a decision from any script (the matcher disabled) the mail opens a new case,
    so no mail is ever silently dropped; a spam complaint never does, whichever scripts run
    (with ``complaint_handler`` disabled it goes to the desk).
    """
    enabled = [s.name for s in ctx.config.processor.incoming_scripts if s.enabled]
    for name in enabled:
        if name not in ACKNOWLEDGEMENT_GUARDS:
            await _run(name, mail, ctx)
    if ctx.decision is None:
        ctx.decision = Decision(
            action="new_case", rule="new", reason="no script decided; the mail opens a new case"
        )
    if mail.classification == "complaint" and ctx.decision.action == "new_case":
        raise MailRejected(
            "spam complaint: complaints never open a case, and no script tied it to our mail "
            "(is the complaint_handler script enabled?)",
            # No script refused it: the pipeline's own rule did.
            script="pipeline",
        )
    if ctx.decision.action == "new_case" and ctx.acknowledge and may_acknowledge(ctx.config, mail):
        for name in enabled:
            if name in ACKNOWLEDGEMENT_GUARDS:
                await _run(name, mail, ctx)
    ctx.script = ""
    return ctx.decision


def may_acknowledge(config: SystemConfig, mail: ParsedMail) -> bool:
    """Whether a new case opened by ``mail`` may be acknowledged at all, whatever the scripts
    say: acknowledgements are on, and the mail is a person's with an address to answer (never
    automatic mail: two systems acknowledging each other is a mail loop)."""
    return (
        config.processor.acknowledge_new_cases
        and mail.classification == "normal"
        and mail.answer_to is not None
    )


async def _run(name: str, mail: ParsedMail, ctx: ScriptContext) -> None:
    ctx.script = name
    await load_script(name)(mail, ctx)
