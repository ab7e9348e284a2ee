"""Helpers of the JMAP integration tests: fresh users, accounts and test mail."""

from __future__ import annotations

import itertools
import os
from typing import Any

import httpx

from deploy.local.cyrus import Cyrus
from shared.models.config import IncomingAccount

_USERS = itertools.count()


def fresh_user(cyrus: Cyrus) -> tuple[str, str]:
    """A new user with an empty INBOX, Archive and Trash: (name, password)."""
    user = f"u{os.getpid()}x{next(_USERS)}"
    password = f"pw-{user}-secret"
    cyrus.add_user(user, password)
    return user, password


def jmap_account(cyrus: Cyrus, user: str, password: str, **fields: object) -> IncomingAccount:
    """An incoming JMAP account on ``user``'s INBOX at ``cyrus``."""
    values: dict[str, object] = {
        "name": f"jmap-{user}",
        "protocol": "JMAP",
        "host": "127.0.0.1",
        "jmap_url": cyrus.base_url,
        "username": user,
        "password": password,
        **fields,
    }
    return IncomingAccount.model_validate(values)


def mail(n: int, *, size: int = 0, subject: str | None = None) -> bytes:
    """A small test mail with Message-ID <m{n}@test>; ``size`` pads the body."""
    body = ("x" * 76 + "\r\n") * (size // 78) if size else f"body {n}\r\n"
    return (
        f"From: sender@example.org\r\nTo: helpdesk@example.org\r\n"
        f"Subject: {subject or f'mail {n}'}\r\nMessage-ID: <m{n}@test>\r\n"
        f"Date: Sun, 06 Dec 2026 10:00:00 +0000\r\n\r\n{body}"
    ).encode()


def import_mail(cyrus: Cyrus, user: str, raw: bytes, received_at: str) -> str:
    """Put ``raw`` into ``user``'s INBOX with the given receivedAt (RFC 3339); its id."""
    upload = httpx.post(
        f"{cyrus.base_url}/jmap/upload/{user}/",
        content=raw,
        headers={"Content-Type": "message/rfc822", **cyrus.auth_header(user)},
        timeout=60,
    )
    upload.raise_for_status()
    inbox = inbox_id(cyrus, user)
    email = {"blobId": upload.json()["blobId"], "mailboxIds": {inbox: True}}
    result = cyrus.call(
        user, "Email/import", {"emails": {"m": {**email, "receivedAt": received_at}}}
    )
    created = result["created"]
    assert isinstance(created, dict), result
    return str(created["m"]["id"])


def inbox_id(cyrus: Cyrus, user: str) -> str:
    """The id of ``user``'s mailbox with role inbox."""
    mailboxes = cyrus.call(user, "Mailbox/get", {"properties": ["role"]})["list"]
    assert isinstance(mailboxes, list)
    return next(str(m["id"]) for m in mailboxes if m["role"] == "inbox")


def emails(cyrus: Cyrus, user: str) -> list[dict[str, Any]]:
    """Every email of ``user``: id, messageId, mailboxIds and keywords."""
    ids = cyrus.call(user, "Email/query", {})["ids"]
    props = ["messageId", "mailboxIds", "keywords"]
    found = cyrus.call(user, "Email/get", {"ids": ids, "properties": props})["list"]
    assert isinstance(found, list)
    return found
