"""The one way to MongoDB. Functions take keyword-only arguments and return models."""

from shared.store._base import Store, open_store
from shared.store.api_tokens import ApiTokenRepo
from shared.store.cases import CaseRepo
from shared.store.desk import DeskRepo
from shared.store.fetch_state import FetchStateRepo
from shared.store.fetchers import FetcherRepo
from shared.store.leases import LeaseRepo
from shared.store.outbox import OutboxRepo
from shared.store.properties import PropertyRepo
from shared.store.raw_emails import RawEmailRepo
from shared.store.test_archive import TestArchiveRepo
from shared.store.users import UserRepo

__all__ = [
    "ApiTokenRepo",
    "CaseRepo",
    "DeskRepo",
    "FetchStateRepo",
    "FetcherRepo",
    "LeaseRepo",
    "OutboxRepo",
    "PropertyRepo",
    "RawEmailRepo",
    "Store",
    "TestArchiveRepo",
    "UserRepo",
    "open_store",
]
