"""Run the enabled incoming-mail scripts in their configured order."""

from __future__ import annotations

from services.processor.parsing import ParsedMail
from services.processor.scripts import Decision, ScriptContext, load_script
from shared.errors import MailRejected


async def run_scripts(mail: ParsedMail, ctx: ScriptContext) -> Decision:
    """The decision for ``mail``; a script's MailRejected propagates to the caller.

    Without a decision from any script (the matcher disabled) the mail opens a new case,
    so no mail is ever silently dropped; a spam complaint never does, whichever scripts run
    (with ``complaint_handler`` disabled it goes to the desk).
    """
    for setting in ctx.config.processor.incoming_scripts:
        if setting.enabled:
            ctx.script = setting.name
            await load_script(setting.name)(mail, ctx)
    ctx.script = ""
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
    return ctx.decision
