"""Per-account outgoing server and From settings on the real sink: an answer to a case goes out
through the account the case's mail came in on when that account has its own SMTP server
(one pool per server), with the account's From, display name and Reply-To; otherwise through
the global connection with the global addresses."""

from __future__ import annotations

from typing import Any

import pytest

from deploy.local.servers import SmtpSink
from services.config.properties import put_account
from services.sender import pool
from services.sender.deliver import deliver
from services.sender.deps import SenderDeps
from services.sender.pool import AiosmtplibTransport
from shared.config_views import ACCOUNTS_MODULE, seal_secrets
from shared.errors import ConfigRejected
from shared.models.messages import MailAddress
from shared.models.records import CaseMessage, RawEmail
from shared.runtime import Runtime
from tests.integration.sender.helpers import connection, outgoing_mail, received
from tests.integration.sender.test_sender_deliver import configure

pytestmark = pytest.mark.integration


async def add_account(rt: Runtime, name: str, **fields: Any) -> None:
    """Store incoming account ``name`` (IMAP on a host nobody connects to here)."""
    value = {"protocol": "IMAP", "host": "imap.invalid", "username": "bob", "password": "bobpw"}
    value = seal_secrets({**value, **fields}, rt.box)
    await rt.store.properties.put(module=ACCOUNTS_MODULE, key=name, value=value, who="t")
    await rt.reload_config()


async def case_from(rt: Runtime, account: str, message_id: str) -> int:
    """A case opened by a mail fetched from ``account``, as the processor leaves it."""
    record = RawEmail(account=account, source_key=f"1:{message_id}", folder="INBOX", size=1,
                      sha256="0" * 64, message_id=message_id)  # fmt: skip
    await rt.store.raw_emails.insert(record=record, data=b"x")
    case, _ = await rt.store.cases.create_for_raw(raw_id=record.id, subject="Hi", contact=None)
    await rt.store.cases.add_message(
        message=CaseMessage(
            case_number=case.number,
            direction="in",
            message_id=message_id,
            raw_id=record.id,
            subject="Hi",
        )
    )
    return case.number


def smtp_fields(sink: SmtpSink, **fields: Any) -> dict[str, Any]:
    """An account's own outgoing server: the sink's STARTTLS port, trusting its CA."""
    own = {
        "outgoing_host": "127.0.0.1",
        "outgoing_port": sink.port,
        "outgoing_security": "starttls",
        "ca_file": str(sink.cert_file),
    }
    return {**own, **fields}


@pytest.mark.parametrize(
    ("credentials", "user"),
    [({"outgoing_credentials": "incoming"}, "bob"),
     ({"outgoing_credentials": "own", "outgoing_username": "alice",
       "outgoing_password": "alicepw"}, "alice")],
)  # fmt: skip
async def test_an_answer_goes_out_through_the_account_the_case_came_in_on(
    rt: Runtime,
    smtp_sink: SmtpSink,
    transport: AiosmtplibTransport,
    credentials: dict[str, Any],
    user: str,
) -> None:
    # The global connection logs in as nobody: the sink marks who sent each mail.
    await configure(rt, connection(smtp_sink, username=None, password=None))
    await add_account(rt, "sales", **smtp_fields(smtp_sink, **credentials))
    case = await case_from(rt, "sales", "<q1@customer.example>")

    mail = outgoing_mail(kind="reply", case_number=case, in_reply_to="<q1@customer.example>")
    entry = await deliver(SenderDeps.of(rt), mail, transport)

    assert entry.status == "sent"
    (copy,) = received(smtp_sink, entry.message_id)
    assert copy["X-Sink-Auth"] == user


async def test_without_its_own_server_an_account_answers_through_the_global_connection(
    rt: Runtime,
    smtp_sink: SmtpSink,
    transport: AiosmtplibTransport,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await configure(rt, connection(smtp_sink))  # alice
    await add_account(rt, "plain")
    await add_account(rt, "sales", **smtp_fields(smtp_sink))  # bob, by its incoming sign-in
    plain_case = await case_from(rt, "plain", "<p@customer.example>")
    sales_case = await case_from(rt, "sales", "<s@customer.example>")

    sent = {}
    for case in (plain_case, sales_case, None):
        entry = await deliver(
            SenderDeps.of(rt), outgoing_mail(kind="reply", case_number=case), transport
        )
        (copy,) = received(smtp_sink, entry.message_id)
        sent[case] = copy["X-Sink-Auth"]

    assert sent == {plain_case: "alice", sales_case: "bob", None: "alice"}
    # One pool per outgoing server and login.
    assert sorted(transport.servers) == [
        ("127.0.0.1", smtp_sink.port, "alice"),
        ("127.0.0.1", smtp_sink.port, "bob"),
    ]
    # A server's pool unused for long is closed (its account moved to another server).
    monkeypatch.setattr(pool, "UNUSED_POOL_S", 0.0)
    await deliver(SenderDeps.of(rt), outgoing_mail(kind="reply", case_number=plain_case), transport)
    assert transport.servers == [("127.0.0.1", smtp_sink.port, "alice")]


async def test_an_answer_carries_the_accounts_from_display_name_and_reply_to(
    rt: Runtime, smtp_sink: SmtpSink, transport: AiosmtplibTransport
) -> None:
    await configure(rt, connection(smtp_sink))
    await rt.store.properties.put(
        module="addresses",
        key="reply_to",
        value={"name": "", "address": "desk@example.com"},
        who="t",
    )
    await add_account(rt, "sales", from_address="sales@example.com", from_name="Sales team")
    await add_account(rt, "billing", from_name="Billing", reply_to="invoices@example.com")
    sales = await case_from(rt, "sales", "<a@customer.example>")
    billing = await case_from(rt, "billing", "<b@customer.example>")

    by_case = {}
    for case in (sales, billing, None):
        entry = await deliver(
            SenderDeps.of(rt), outgoing_mail(kind="reply", case_number=case), transport
        )
        (copy,) = received(smtp_sink, entry.message_id)
        by_case[case] = (copy["From"], copy["Reply-To"], copy["X-Sink-Mail-From"])

    assert by_case[sales] == ("Sales team <sales@example.com>", None, "sales@example.com")
    assert by_case[billing] == (
        "Billing <helpdesk@example.com>",
        "invoices@example.com",
        "helpdesk@example.com",
    )
    assert by_case[None] == (
        "Helpdesk <helpdesk@example.com>",
        "desk@example.com",
        "helpdesk@example.com",
    )
    # A From the mail carries still wins over the account's.
    carried = outgoing_mail(
        kind="reply",
        case_number=sales,
        from_address=MailAddress(name="Queue", address="queue@example.com"),
    )
    entry = await deliver(SenderDeps.of(rt), carried, transport)
    (copy,) = received(smtp_sink, entry.message_id)
    assert copy["From"] == "Queue <queue@example.com>"


async def test_an_accounts_from_must_be_in_the_allowed_from_list(rt: Runtime) -> None:
    await rt.store.properties.put(
        module="addresses", key="allowed_from", value=["helpdesk@example.com"], who="t"
    )
    await rt.reload_config()
    fields = {"protocol": "IMAP", "host": "imap.invalid", "username": "u", "password": "p"}

    with pytest.raises(ConfigRejected, match=r"incoming.accounts/sales: from_address sales@"):
        await put_account(
            rt, name="sales", fields={**fields, "from_address": "sales@example.com"},
            who="t", create=True,
        )  # fmt: skip
    account = await put_account(
        rt, name="sales", fields={**fields, "from_address": "HelpDesk@example.com"},
        who="t", create=True,
    )  # fmt: skip
    assert account.from_address == "HelpDesk@example.com"
