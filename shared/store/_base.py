"""The Store: one MongoDB database and the repositories over its collections."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from shared import bench_counts
from shared.errors import Duplicate, StoreError
from shared.store._errors import Repo, mongo_errors

Doc = dict[str, Any]

DESK_BY_STATUS = [("status", ASCENDING), ("last_failed_at", DESCENDING)]
DESK_BY_ACCOUNT = [("account", ASCENDING), ("status", ASCENDING), ("last_failed_at", DESCENDING)]
"""The desk's pages read windows of failure times on these (shared/store/desk.py) and order
them in Python. Shaped for the local stand-in's planner, which picks an index by its prefix:
the account leads (given a (status, account, ...) index for a query without an account it
used that one and missed entries), and nothing follows the time (with ``_id`` after it, a
range read left out the entries exactly at its far bound). No hint either: with one, the
stand-in takes seconds for any window."""

INDEXES: dict[str, list[IndexModel]] = {
    "properties": [IndexModel([("module", ASCENDING), ("key", ASCENDING)], unique=True)],
    "config_log": [IndexModel([("version", ASCENDING)])],
    "raw_emails": [
        IndexModel([("account", ASCENDING), ("source_key", ASCENDING)], unique=True),
        IndexModel([("status", ASCENDING)]),
        IndexModel([("message_id", ASCENDING)]),
    ],
    "fetch_state": [IndexModel([("account", ASCENDING), ("folder", ASCENDING)], unique=True)],
    "leases": [IndexModel([("owner", ASCENDING)])],
    "fetchers": [IndexModel([("heartbeat_at", ASCENDING)])],
    "cases": [
        IndexModel([("number", ASCENDING)], unique=True),
        IndexModel(
            [("origin_raw_id", ASCENDING)],
            unique=True,
            partialFilterExpression={"origin_raw_id": {"$type": "string"}},
        ),
        IndexModel(
            [("conversation_id", ASCENDING)],
            unique=True,
            partialFilterExpression={"conversation_id": {"$type": "string"}},
        ),
        IndexModel([("created_at", ASCENDING)]),
    ],
    "auto_answer_counts": [IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0)],
    "messages": [
        IndexModel([("message_id", ASCENDING)]),
        IndexModel([("case_number", ASCENDING), ("created_at", ASCENDING)]),
        IndexModel(
            [("raw_id", ASCENDING)],
            unique=True,
            partialFilterExpression={"raw_id": {"$type": "string"}},
        ),
        IndexModel(
            [("outbox_id", ASCENDING)],
            unique=True,
            partialFilterExpression={"outbox_id": {"$type": "string"}},
        ),
    ],
    # Each outbox list filter reads windows of created_at on its own index (see OutboxRepo.page);
    # no trailing _id: the stand-in's range read then leaves out entries at the far bound.
    "outbox": [
        IndexModel([("message_id", ASCENDING)]),
        IndexModel([("created_at", ASCENDING)]),
        IndexModel([("status", ASCENDING), ("created_at", ASCENDING)]),
        IndexModel([("case_number", ASCENDING), ("created_at", ASCENDING)]),
    ],
    "reply_keys": [IndexModel([("created_at", ASCENDING)], expireAfterSeconds=7 * 86400)],
    "test_archive": [
        IndexModel([("intercepted_at", ASCENDING)]),
        IndexModel([("case_number", ASCENDING)]),
    ],
    "failed_mails": [IndexModel(DESK_BY_STATUS), IndexModel(DESK_BY_ACCOUNT)],
    "replays": [IndexModel([("failed_id", ASCENDING)])],
    "user_log": [IndexModel([("user", ASCENDING), ("at", ASCENDING)])],
    "api_tokens": [
        IndexModel([("token_hash", ASCENDING)], unique=True),
        IndexModel([("user", ASCENDING)]),
    ],
    # One document per credential, condition and day an alert went out; a week is plenty.
    "credential_alerts": [IndexModel([("at", ASCENDING)], expireAfterSeconds=7 * 86400)],
    "credential_log": [IndexModel([("name", ASCENDING), ("at", ASCENDING)])],
    "web_sessions": [
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0),
        IndexModel([("user", ASCENDING)]),
    ],
}


class Store(Repo):
    """Repositories over one database; build with :func:`open_store`."""

    def __init__(self, client: AsyncMongoClient[Doc], database: str) -> None:
        from shared.store.account_health import AccountHealthRepo
        from shared.store.api_tokens import ApiTokenRepo
        from shared.store.cases import CaseRepo
        from shared.store.desk import DeskRepo
        from shared.store.fetch_state import FetchStateRepo
        from shared.store.fetchers import FetcherRepo
        from shared.store.leases import LeaseRepo
        from shared.store.mail_marks import MailMarkRepo
        from shared.store.outbox import OutboxRepo
        from shared.store.properties import PropertyRepo
        from shared.store.raw_emails import RawEmailRepo
        from shared.store.reply_keys import ReplyKeyRepo
        from shared.store.suppressions import SuppressionRepo
        from shared.store.test_archive import TestArchiveRepo
        from shared.store.users import UserRepo
        from shared.store.web_sessions import WebSessionRepo

        self.client = client
        self.db: AsyncDatabase[Doc] = client[database]
        self.properties = PropertyRepo(self.db)
        self.raw_emails = RawEmailRepo(self.db)
        self.fetch_state = FetchStateRepo(self.db)
        self.fetchers = FetcherRepo(self.db)
        self.leases = LeaseRepo(self.db)
        self.cases = CaseRepo(self.db)
        self.outbox = OutboxRepo(self.db)
        self.test_archive = TestArchiveRepo(self.db)
        self.desk = DeskRepo(self.db)
        self.account_health = AccountHealthRepo(self.db)
        self.users = UserRepo(self.db)
        self.api_tokens = ApiTokenRepo(self.db)
        self.mail_marks = MailMarkRepo(self.db)
        self.suppressions = SuppressionRepo(self.db)
        self.web_sessions = WebSessionRepo(self.db)
        self.reply_keys = ReplyKeyRepo(self.db)

    async def ensure_indexes(self) -> None:
        """Create every index Mailroom relies on (idempotent)."""
        for name, indexes in INDEXES.items():
            await self.db[name].create_indexes(indexes)

    async def ping(self) -> None:
        """Raise StoreUnavailable (a Transient) when MongoDB does not answer."""
        await self.db.command("ping")

    async def close(self) -> None:
        """Close the client's connections."""
        await self.client.close()


async def open_store(url: str, database: str, *, timeout_ms: int = 10_000) -> Store:
    """Connect, check the server answers and make sure the indexes exist.

    Raises StoreUnavailable when MongoDB does not answer within ``timeout_ms`` (the caller
    retries: see ``shared.retry.until_available``), StoreError for a URL it cannot use.
    """
    with mongo_errors("open_store"):
        client: AsyncMongoClient[Doc] = AsyncMongoClient(
            url,
            serverSelectionTimeoutMS=timeout_ms,
            tz_aware=True,
            uuidRepresentation="standard",
            event_listeners=bench_counts.event_listeners(),  # none unless a bench asks
        )
    store = Store(client, database)
    try:
        await store.ping()
        await store.ensure_indexes()
    except BaseException:
        await client.close()  # a retry opens a new one: do not leave this one's monitors
        raise
    return store


_SEQUENCE_TRIES = 3
"""Takes of a counter before giving up: the creation race costs one."""


async def next_sequence(
    db: AsyncDatabase[Doc], name: str, *, start: int = 1, count: int = 1
) -> int:
    """Atomically take the next ``count`` numbers of the counter ``name``; the first of them.

    The first takes of a new counter race to create it: MongoDB may answer the loser with a
    duplicate key error, and the stand-in was seen answering it with no document at all (the
    chaos run's first mail went to the desk as an internal error). Either way the counter
    exists afterwards, so the take is simply tried again.
    """
    for _ in range(_SEQUENCE_TRIES):
        try:
            with mongo_errors(f"next_sequence {name}"):
                doc = await db["counters"].find_one_and_update(
                    {"_id": name}, {"$inc": {"seq": count}}, upsert=True, return_document=True
                )
        except Duplicate:
            continue
        if doc is not None:
            return int(doc["seq"]) - count + start
    raise StoreError("the counter could not be advanced", operation=f"next_sequence {name}")
