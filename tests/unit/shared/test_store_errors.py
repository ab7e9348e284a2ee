"""The store translates PyMongo's errors once: an outage is StoreUnavailable (Transient), a
stray duplicate key is Duplicate, the rest a StoreError naming the operation."""

from __future__ import annotations

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    DuplicateKeyError,
    NotPrimaryError,
    OperationFailure,
    ServerSelectionTimeoutError,
)

from shared.errors import Duplicate, StoreError, StoreUnavailable, Transient
from shared.store import Store
from shared.store._errors import translate


@pytest.mark.parametrize(
    "exc",
    [
        ServerSelectionTimeoutError("no servers"),
        AutoReconnect("connection closed"),
        NotPrimaryError("not primary"),
        OperationFailure("stepped down", code=189),
        OperationFailure("retry me", code=1, details={"errorLabels": ["RetryableWriteError"]}),
        BulkWriteError({"writeErrors": [], "writeConcernErrors": [{"code": 64}]}),
    ],
)
def test_an_outage_is_store_unavailable_and_transient(exc: Exception) -> None:
    mapped = translate(exc, "RawEmailRepo.get")
    assert isinstance(mapped, StoreUnavailable) and isinstance(mapped, Transient)
    assert "RawEmailRepo.get" in str(mapped)


def test_a_duplicate_key_is_duplicate() -> None:
    mapped = translate(DuplicateKeyError("E11000", code=11000), "CaseRepo.add_message")
    assert isinstance(mapped, Duplicate) and mapped.operation == "CaseRepo.add_message"
    bulk = BulkWriteError({"writeErrors": [{"code": 11000, "index": 0}]})
    assert isinstance(translate(bulk, "x"), Duplicate)


def test_any_other_refusal_is_a_store_error_naming_the_operation() -> None:
    mapped = translate(OperationFailure("bad $set", code=9), "OutboxRepo.record")
    assert isinstance(mapped, StoreError) and not isinstance(mapped, Transient)
    assert mapped.operation == "OutboxRepo.record" and "bad $set" in str(mapped)
    assert translate(ValueError("not ours"), "x") is None


async def test_a_repository_call_without_mongodb_raises_store_unavailable() -> None:
    # Port 9 (discard) on localhost: nothing listens, the connection is refused at once.
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        "mongodb://127.0.0.1:9/", serverSelectionTimeoutMS=200
    )
    store = Store(client, "nowhere")
    try:
        with pytest.raises(StoreUnavailable, match=r"RawEmailRepo\.start_attempt"):
            await store.raw_emails.start_attempt(raw_id="r1")
        with pytest.raises(StoreUnavailable):
            await store.ping()
        with pytest.raises(StoreUnavailable, match=r"OutboxRepo\.get"):
            await store.outbox.get(mail_id="m")
    finally:
        await client.close()


def test_every_repository_maps_the_library_errors() -> None:
    # A repository added without the base would let PyMongo's errors reach the services
    # (an outage would then look like the mail's fault).
    import importlib
    import inspect
    import pkgutil

    import shared.store
    from shared.store._errors import Repo

    for module in pkgutil.iter_modules(shared.store.__path__):
        loaded = importlib.import_module(f"shared.store.{module.name}")
        for name, cls in inspect.getmembers(loaded, inspect.isclass):
            if cls.__module__ == loaded.__name__ and (name.endswith("Repo") or name == "Store"):
                assert issubclass(cls, Repo), f"{loaded.__name__}.{name} must derive from Repo"
