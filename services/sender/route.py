"""Which account a mail goes out through: the one its case's mail came in on.

A mail answering a case (an agent's reply, an acknowledgement) belongs to the incoming
account the case's mail was fetched from: the mail answered (its ``in_reply_to``) when
Mailroom fetched it, else the case's newest fetched mail. The case system may choose another
account (``OutgoingMail.account``; the reply API takes only accounts made available to
users). That account's settings shape the
mail, as CSM's per-account Outgoing Server and From Settings pages do:

- its own outgoing server (``outgoing_host``) replaces the global outgoing connection;
  without one the mail goes through the global connection;
- its From address and display name replace the global From (a From the mail carries still
  wins); its Reply-To replaces the global one, and an account with its own From but no
  Reply-To sends none, so that replies come back to that From and not to another mailbox.

Mail without a case (technical notifications) and mail whose case has no fetched mail go out
as before: global connection, global addresses.
"""

from __future__ import annotations

import logging

from shared.models.config import IncomingAccount, SystemConfig
from shared.models.messages import MailAddress, OutgoingMail
from shared.store.cases import CaseRepo

log = logging.getLogger(__name__)


def shapes_mail(account: IncomingAccount) -> bool:
    """Whether the account has outgoing settings of its own (server or From settings)."""
    own = (account.outgoing_host, account.from_address, account.from_name, account.reply_to)
    return any(value is not None for value in own)


async def account_of(
    cases: CaseRepo, mail: OutgoingMail, config: SystemConfig
) -> IncomingAccount | None:
    """The account ``mail`` goes out through, or None (see the module docstring)."""
    return await case_account(
        cases,
        config,
        case_number=mail.case_number,
        in_reply_to=mail.in_reply_to,
        chosen=mail.account,
    )


async def case_account(
    cases: CaseRepo,
    config: SystemConfig,
    *,
    case_number: int | None,
    in_reply_to: str | None,
    chosen: str | None = None,
) -> IncomingAccount | None:
    """The account an answer on case ``case_number`` goes out through: ``chosen`` (an
    account the case system picked), else the one the case's mail came in on; None when
    the global settings apply."""
    if chosen is not None and chosen in config.accounts:
        return config.accounts[chosen]
    if chosen is not None:
        # Deleted since the mail was queued: the case decides, as for any other answer.
        log.warning("account %s of an outgoing mail is gone", chosen, extra={"account": chosen})
    if case_number is None or not any(shapes_mail(a) for a in config.accounts.values()):
        return None  # nothing to look up: every account sends as the global settings say
    name = await cases.incoming_account(number=case_number, in_reply_to=in_reply_to)
    return config.accounts.get(name) if name is not None else None


def routed(config: SystemConfig, account: IncomingAccount | None) -> SystemConfig:
    """``config`` as a mail through ``account`` sees it: the account's outgoing server and
    From settings in place of the global ones."""
    if account is None or not shapes_mail(account):
        return config
    addresses = config.addresses
    sender = addresses.from_address
    reply_to = addresses.reply_to
    if account.from_address is not None or account.from_name is not None:
        sender = MailAddress(
            name=account.from_name if account.from_name is not None else sender.name,
            address=account.from_address or sender.address,
        )
        if account.from_address is not None:
            reply_to = None
    if account.reply_to is not None:
        reply_to = MailAddress(address=account.reply_to)
    update: dict[str, object] = {
        "addresses": addresses.model_copy(update={"from_address": sender, "reply_to": reply_to})
    }
    own = account.outgoing_connection(config.outgoing)
    if own is not None:
        update["outgoing"] = own
    # model_copy does not validate again: the views were validated when they were stored.
    return config.model_copy(update=update)
