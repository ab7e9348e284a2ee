"""The server fixtures give real, usable servers (the ground every integration test stands on)."""

from __future__ import annotations

import asyncio
import imaplib
import poplib
import smtplib
import ssl
import uuid
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import aio_pika
import pytest
from aiormq import spec
from pymongo import AsyncMongoClient, MongoClient
from pymongo.errors import DuplicateKeyError

from deploy.local.servers import Dovecot, SmtpSink, start_mongodb

pytestmark = pytest.mark.integration


def _mail(subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "alice@example.com"
    msg["To"] = "bob@example.com"
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@example.com>"
    msg.set_content("hello\n")
    return msg


def _client_tls(ca_file: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))


async def test_rabbit_vhost_quorum_queue_roundtrip(rabbit_url: str) -> None:
    assert urlsplit(rabbit_url).path not in ("", "/"), "tests must not share the default vhost"
    connection = await aio_pika.connect(rabbit_url, timeout=10)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(
            "fixture-check",
            durable=True,
            arguments={"x-queue-type": "quorum", "x-delivery-limit": 3},
        )
        body = uuid.uuid4().bytes
        confirmation = await channel.default_exchange.publish(
            aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=queue.name,
            timeout=10,
        )
        assert isinstance(confirmation, spec.Basic.Ack)
        async with asyncio.timeout(10), queue.iterator() as messages:
            async for message in messages:
                async with message.process():
                    assert message.body == body
                    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
                break


async def test_mongo_unique_index_rejects_duplicates(mongo_url: str, mongo_db_name: str) -> None:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongo_url)
    try:
        collection = client[mongo_db_name]["mails"]
        await collection.create_index("message_id", unique=True)
        await collection.insert_one({"message_id": "<a@example.com>"})
        with pytest.raises(DuplicateKeyError):
            await collection.insert_one({"message_id": "<a@example.com>"})
    finally:
        await client.close()


def test_lmtp_delivery_is_visible_over_verified_imaps_and_pop3s(dovecot: Dovecot) -> None:
    mail = _mail("delivered over LMTP")
    dovecot.deliver("alice", mail.as_bytes())
    tls = _client_tls(dovecot.cert_file)
    imap = imaplib.IMAP4_SSL("127.0.0.1", dovecot.imaps_port, ssl_context=tls, timeout=10)
    try:
        imap.login("alice", "alicepw")
        imap.select("INBOX", readonly=True)
        _, found = imap.search(None, "HEADER", "Message-ID", mail["Message-ID"])
        (number,) = found[0].split()
        _, fetched = imap.fetch(number.decode(), "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        header = fetched[0]
        assert isinstance(header, tuple)
        assert b"delivered over LMTP" in header[1]
    finally:
        imap.logout()
    pop3 = poplib.POP3_SSL("localhost", dovecot.pop3s_port, context=tls, timeout=10)
    try:
        pop3.user("alice")
        pop3.pass_("alicepw")
        count, _size = pop3.stat()
        assert count >= 1
    finally:
        pop3.quit()


def test_imaps_certificate_is_not_trusted_without_the_ca_file(dovecot: Dovecot) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        imaplib.IMAP4_SSL(
            "127.0.0.1", dovecot.imaps_port, ssl_context=ssl.create_default_context(), timeout=10
        )


def test_added_user_logs_in_and_reset_empties_the_mailbox(dovecot: Dovecot) -> None:
    user = f"user-{uuid.uuid4().hex[:8]}"
    dovecot.add_user(user, "secret")
    dovecot.deliver(user, _mail("to be reset").as_bytes())
    imap = imaplib.IMAP4("127.0.0.1", dovecot.imap_port, timeout=10)
    try:
        imap.login(user, "secret")
        assert imap.select("INBOX") == ("OK", [b"1"])
    finally:
        imap.logout()
    dovecot.reset_mailbox(user)
    imap = imaplib.IMAP4("127.0.0.1", dovecot.imap_port, timeout=10)
    try:
        imap.login(user, "secret")
        assert imap.select("INBOX") == ("OK", [b"0"])
    finally:
        imap.logout()


def _received(sink: SmtpSink, message_id: str) -> EmailMessage:
    (received,) = [m for m in sink.messages() if m["Message-ID"] == message_id]
    return received


def test_smtp_starttls_auth_send_lands_in_the_sink(smtp_sink: SmtpSink) -> None:
    mail = _mail("sent with STARTTLS")
    with smtplib.SMTP("127.0.0.1", smtp_sink.port, timeout=10) as smtp:
        smtp.starttls(context=_client_tls(smtp_sink.cert_file))
        with pytest.raises(smtplib.SMTPAuthenticationError):
            smtp.login("alice", "wrong")
        smtp.login("alice", "alicepw")
        smtp.send_message(mail, to_addrs=["bob@example.com", "carol@example.com"])
    received = _received(smtp_sink, mail["Message-ID"])
    assert received["Subject"] == "sent with STARTTLS"
    assert received["X-Sink-Mail-From"] == "alice@example.com"
    assert received["X-Sink-Rcpt-To"] == "bob@example.com, carol@example.com"
    assert received["X-Sink-Auth"] == "alice"


def test_smtps_port_speaks_implicit_tls(smtp_sink: SmtpSink) -> None:
    mail = _mail("sent over SMTPS")
    tls = _client_tls(smtp_sink.cert_file)
    with smtplib.SMTP_SSL("localhost", smtp_sink.smtps_port, context=tls, timeout=10) as smtp:
        smtp.login("bob", "bobpw")
        smtp.send_message(mail)
    assert _received(smtp_sink, mail["Message-ID"])["X-Sink-Auth"] == "bob"


def test_standin_with_a_data_dir_keeps_its_data_across_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MONGODB_URL", raising=False)  # the stand-in itself, even in CI
    data_dir = tmp_path / "mongodb"
    first = start_mongodb(tmp_path, data_dir=data_dir)
    try:
        # The stand-in's retryable-write bookkeeping costs on every write; we never need it.
        assert urlsplit(first.url).query == "retryWrites=false"
        client: MongoClient[dict[str, object]] = MongoClient(first.url)
        with client:
            client["keep"]["cases"].insert_one({"number": 10001, "subject": "kept"})
    finally:
        first.stop()
    second = start_mongodb(tmp_path, data_dir=data_dir, port=urlsplit(first.url).port)
    try:
        assert second.url == first.url, "the same port again, so loaded env files stay right"
        client = MongoClient(second.url)
        with client:
            kept = client["keep"]["cases"].find_one({"number": 10001}, {"_id": 0})
        assert kept == {"number": 10001, "subject": "kept"}
    finally:
        second.stop()
