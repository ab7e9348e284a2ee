"""Raw mails, stored before anything else happens to them.

A mail up to GRIDFS_THRESHOLD bytes is kept inside its document (one write, one read); a
larger one goes to the ``raw_emails`` GridFS bucket under the document's id, because a
MongoDB document cannot exceed 16 MiB. Its file is written before the document, so a
document never points at a missing file; a crash in between leaves an orphan file that no
document names (space only; the mail is fetched again under a new id).

The file is written here in GridFS's own format, a few chunks per insert, rather than with
``upload_from_stream_with_id``: that keeps up to 32 MiB of chunk copies (and their BSON) in
memory before its first write, which with the mail itself tripled the fetcher's peak for a
large mail. Reading is plain GridFS. The bytes go into MongoDB as they are (``bytes`` is BSON
binary): wrapping them in ``bson.Binary`` would copy every mail twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from gridfs import AsyncGridFSBucket
from gridfs.errors import NoFile
from pymongo import ASCENDING, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from shared.errors import NotFound
from shared.models.messages import utcnow
from shared.models.records import RawEmail, RawStatus
from shared.store._base import Doc
from shared.store._batch import Lookups, Writes
from shared.store._errors import Repo, mongo_errors

GRIDFS_THRESHOLD = 8 * 1024 * 1024
GRIDFS_CHUNK_SIZE = 255 * 1024
"""GridFS's default chunk size."""
GRIDFS_CHUNKS_PER_WRITE = 16
"""About 4 MiB per insert: few round trips, and at most this much copied at a time."""
_ENDED = {"unfinished": 0, "solo_runs": 0}
"""A processing attempt that ended without crashing the processor (see ``start_attempt``)."""


class RawEmailRepo(Repo):
    """``raw_emails``: unique per (account, source key)."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._coll = db["raw_emails"]
        self._files = AsyncGridFSBucket(db, bucket_name="raw_emails")
        self._file_docs = db["raw_emails.files"]
        self._chunks = db["raw_emails.chunks"]
        self._indexed = False
        # The processor's per-mail reads and writes, sent together (shared.store._batch).
        self._writes = Writes(self._coll)
        self._by_id = Lookups(self._coll, "_id")

    async def _doc(self, record: RawEmail, data: bytes) -> Doc:
        """The document for a record: bytes inline, or in GridFS above the threshold."""
        doc = record.model_dump(by_alias=True)
        if len(data) <= GRIDFS_THRESHOLD:
            doc["data"] = data
            return doc
        await self._upload(record.id, record.source_key, data)
        doc["gridfs"] = True
        return doc

    async def _upload(self, file_id: str, filename: str, data: bytes) -> None:
        """Write ``data`` as GridFS file ``file_id``: the chunks, then the file document."""
        if not self._indexed:
            # What GridFS's own uploader makes sure of before its first write.
            await self._chunks.create_index(
                [("files_id", ASCENDING), ("n", ASCENDING)], unique=True
            )
            self._indexed = True
        step = GRIDFS_CHUNK_SIZE * GRIDFS_CHUNKS_PER_WRITE
        for first in range(0, len(data), step):
            starts = range(first, min(len(data), first + step), GRIDFS_CHUNK_SIZE)
            await self._chunks.insert_many(
                [
                    {
                        "files_id": file_id,
                        "n": start // GRIDFS_CHUNK_SIZE,
                        "data": data[start : start + GRIDFS_CHUNK_SIZE],
                    }
                    for start in starts
                ]
            )
        await self._file_docs.insert_one(
            {
                "_id": file_id,
                "length": len(data),
                "chunkSize": GRIDFS_CHUNK_SIZE,
                "uploadDate": utcnow(),
                "filename": filename,
            }
        )

    async def _drop_files(self, records: Sequence[RawEmail]) -> None:
        """Delete the GridFS files of records whose documents were not written."""
        for record in records:
            try:
                await self._files.delete(record.id)
            except NoFile:
                continue

    async def insert(self, *, record: RawEmail, data: bytes) -> tuple[RawEmail, bool]:
        """Store a raw mail; when its (account, source key) exists, return that one instead.

        The second item is True when this call created the document.
        """
        [stored] = await self.insert_many(records=[(record, data)])
        return stored

    async def insert_many(
        self, *, records: Sequence[tuple[RawEmail, bytes]]
    ) -> list[tuple[RawEmail, bool]]:
        """:meth:`insert` for each (record, bytes), in order, in one round trip.

        Mails stored before (same account and source key) come back as the stored record
        with False, as from :meth:`insert`.
        """
        if not records:
            return []
        docs = [await self._doc(record, data) for record, data in records]
        duplicates: set[int] = set()
        try:
            await self._coll.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if not errors or any(error.get("code") != 11000 for error in errors):
                raise
            duplicates = {int(error["index"]) for error in errors}
            await self._drop_files([records[i][0] for i in duplicates if docs[i].get("gridfs")])
        existing: dict[tuple[str, str], RawEmail] = {}
        if duplicates:
            wanted = [records[i][0] for i in duplicates]
            query = {
                "account": {"$in": sorted({r.account for r in wanted})},
                "source_key": {"$in": sorted({r.source_key for r in wanted})},
            }
            async for doc in self._coll.find(query, {"data": 0}):
                found = RawEmail.model_validate(doc)
                existing[(found.account, found.source_key)] = found
        result: list[tuple[RawEmail, bool]] = []
        for index, (record, _) in enumerate(records):
            if index not in duplicates:
                result.append((record, True))
                continue
            stored = existing.get((record.account, record.source_key))
            if stored is None:  # deleted between the insert and the lookup
                raise NotFound(f"raw mail {record.account}/{record.source_key} vanished")
            result.append((stored, False))
        return result

    async def find_twins(
        self, *, account: str, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], RawEmail]:
        """Stored mails of ``account`` by (Message-ID, sha256), for the given pairs: the same
        mail stored before under another source key (e.g. before a UIDVALIDITY change)."""
        wanted = set(keys)
        if not wanted:
            return {}
        query = {"account": account, "message_id": {"$in": sorted({m for m, _ in wanted})}}
        found: dict[tuple[str, str], RawEmail] = {}
        async for doc in self._coll.find(query, {"data": 0}).sort("fetched_at", 1):
            record = RawEmail.model_validate(doc)
            key = (record.message_id or "", record.sha256)
            if key in wanted:
                found.setdefault(key, record)  # the first one stored is the original
        return found

    async def get(self, *, raw_id: str) -> RawEmail:
        """The record without its bytes."""
        doc = await self._coll.find_one({"_id": raw_id}, {"data": 0})
        if doc is None:
            raise NotFound(f"no raw mail {raw_id}")
        return RawEmail.model_validate(doc)

    async def data(self, *, raw_id: str) -> bytes:
        """The raw bytes exactly as fetched."""
        doc = await self._coll.find_one({"_id": raw_id}, {"data": 1, "gridfs": 1})
        if doc is None:
            raise NotFound(f"no raw mail {raw_id}")
        return await self._bytes(doc)

    async def _bytes(self, doc: Doc) -> bytes:
        """The bytes of a stored document: inline, or read from its GridFS file."""
        if doc.get("gridfs"):
            stream = await self._files.open_download_stream(doc["_id"])
            return bytes(await stream.read())
        return bytes(doc["data"])

    async def set_status(
        self,
        *,
        raw_id: str,
        status: RawStatus,
        only_from: tuple[RawStatus, ...] = (),
        **fields: Any,
    ) -> bool:
        """Move a mail to ``status`` (optionally only from the given ones); True if it moved."""
        query: Doc = {"_id": raw_id}
        if only_from:
            query["status"] = {"$in": list(only_from)}
        result = await self._coll.update_one(query, {"$set": {"status": status, **fields}})
        return result.modified_count == 1

    async def set_status_many(
        self,
        *,
        raw_ids: Sequence[str],
        status: RawStatus,
        only_from: tuple[RawStatus, ...] = (),
    ) -> int:
        """:meth:`set_status` for many mails in one round trip; returns how many moved."""
        if not raw_ids:
            return 0
        query: Doc = {"_id": {"$in": list(raw_ids)}}
        if only_from:
            query["status"] = {"$in": list(only_from)}
        result = await self._coll.update_many(query, {"$set": {"status": status}})
        return result.modified_count

    async def chunks(self, *, raw_id: str) -> AsyncIterator[bytes]:
        """The raw bytes piece by piece (GridFS chunk by chunk): a big mail is never held
        whole. The pieces are read as the caller iterates."""
        doc = await self._coll.find_one({"_id": raw_id}, {"data": 1, "gridfs": 1})
        if doc is None:
            raise NotFound(f"no raw mail {raw_id}")
        if not doc.get("gridfs"):
            data = bytes(doc["data"])
            del doc

            async def inline() -> AsyncIterator[bytes]:
                for start in range(0, len(data), GRIDFS_CHUNK_SIZE):
                    yield data[start : start + GRIDFS_CHUNK_SIZE]

            return inline()
        stream = await self._files.open_download_stream(raw_id)

        async def stored() -> AsyncIterator[bytes]:
            try:
                with mongo_errors("RawEmailRepo.chunks"):
                    while chunk := await stream.readchunk():
                        yield bytes(chunk)
            finally:
                await stream.close()

        return stored()

    async def start_attempt(
        self, *, raw_id: str, alone: bool = False, read_up_to: int | None = None
    ) -> tuple[RawEmail, bytes | None]:
        """Count a processing attempt; the record, and its bytes unless it was processed before
        (or is over ``read_up_to``).

        The attempt is counted before anything is read, so an attempt that crashes counts too:
        it stays ``unfinished`` until :meth:`finish_attempt` (or the status ``processed``).
        ``alone``: the mail is processed by itself as a crash suspect (``solo_runs``).
        ``read_up_to``: the bytes of a bigger mail are not read (None comes back; the caller
        streams them with :meth:`chunks`).
        """
        # An update and a read of the whole document rather than a findAndModify and a second
        # read for the bytes: findAndModify costs the MongoDB stand-in several times an update.
        counts = {"attempts": 1, "unfinished": 1, **({"solo_runs": 1} if alone else {})}
        await self._writes.write(UpdateOne({"_id": raw_id}, {"$inc": counts}))
        doc = await self._by_id.one(raw_id)
        if doc is None:
            raise NotFound(f"no raw mail {raw_id}")
        record = RawEmail.model_validate(doc)
        if record.status == "processed" or (read_up_to is not None and record.size > read_up_to):
            return record, None
        return record, await self._bytes(doc)

    async def processed(self, *, raw_id: str, case_number: int | None) -> None:
        """The mail is processed (into ``case_number``, None: dropped); its attempt ended."""
        done = {"status": "processed", "case_number": case_number, "error": None}
        await self._writes.write(UpdateOne({"_id": raw_id}, {"$set": {**done, **_ENDED}}))

    async def finish_attempt(self, *, raw_id: str) -> None:
        """The attempt ended (whatever its outcome) without crashing the processor."""
        await self._writes.write(UpdateOne({"_id": raw_id}, {"$set": _ENDED}))

    async def record_failure(self, *, raw_id: str, error: str) -> None:
        """Mark the mail failed with its reason, keeping the first failure time.

        A mail already processed stays processed: its state follows its case, not a late
        failure of a redelivered copy.
        """
        now = utcnow()
        await self._coll.update_one(
            {"_id": raw_id, "status": {"$ne": "processed"}},
            [
                {
                    "$set": {
                        "status": "failed",
                        "error": error,
                        "last_failed_at": now,
                        "first_failed_at": {"$ifNull": ["$first_failed_at", now]},
                    }
                }
            ],
        )

    async def recent(
        self, *, account: str | None = None, status: RawStatus | None = None, limit: int = 100
    ) -> list[RawEmail]:
        """Recent raw mails, newest first."""
        query: Doc = {}
        if account:
            query["account"] = account
        if status:
            query["status"] = status
        cursor = self._coll.find(query, {"data": 0}).sort("fetched_at", -1).limit(limit)
        return [RawEmail.model_validate(d) async for d in cursor]

    async def count(self, *, account: str | None = None) -> int:
        """How many raw mails are stored."""
        return await self._coll.count_documents({"account": account} if account else {})
