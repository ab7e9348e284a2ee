"""Attachment bytes in the ``attachments`` GridFS bucket, one file per content.

A file's id is the SHA-256 of its bytes, so the same logo in a thousand mails is stored once
and storing an attachment again (a redelivered mail) finds the file instead of copying it.

The files are written here in GridFS's own format rather than with
``AsyncGridFSBucket.upload_from_stream_with_id``: that call aborts a failed upload by deleting
every chunk of the id, which would destroy the chunks of a concurrent upload of the same
content and leave a file document without its chunks. Instead each chunk is an idempotent
upsert keyed by (file, n) — every writer of an id writes the same bytes — and the file
document comes last, so a crash mid-write leaves chunks that the next attempt completes,
never a file that cannot be read. Reading is plain GridFS. Like GridFS's own uploader, the
repository makes sure of the unique (files_id, n) index before its first write.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Sequence

from bson import Binary
from gridfs import AsyncGridFSBucket
from gridfs.errors import NoFile
from pymongo import ASCENDING, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from shared.errors import NotFound
from shared.models.messages import utcnow
from shared.store._base import Doc
from shared.store._errors import Repo, mongo_errors

BUCKET = "attachments"
CHUNK_SIZE = 255 * 1024
"""GridFS's default chunk size; every writer of an id must use the same one."""
CHUNKS_PER_WRITE = 16
"""At most about 4 MiB per round trip: few round trips, and at most this much copied at once."""
HASH_IN_THREAD = 1024 * 1024
"""Hashing a larger attachment on the event loop would stall every other mail."""


async def content_id(data: bytes) -> str:
    """The file id of ``data``: its SHA-256 in hex."""
    if len(data) > HASH_IN_THREAD:
        return await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
    return hashlib.sha256(data).hexdigest()


def _only_duplicates(exc: BulkWriteError) -> None:
    """Re-raise ``exc`` unless every error in it is a duplicate key."""
    errors = exc.details.get("writeErrors", [])
    if not errors or any(error.get("code") != 11000 for error in errors):
        raise exc


class AttachmentRepo(Repo):
    """The ``attachments`` bucket: store once per content, read back by file id."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._files = db[f"{BUCKET}.files"]
        self._chunks = db[f"{BUCKET}.chunks"]
        self._bucket = AsyncGridFSBucket(db, bucket_name=BUCKET, chunk_size_bytes=CHUNK_SIZE)
        self._indexed = False

    async def _ensure_index(self) -> None:
        # Without it two concurrent upserts of one chunk could both insert.
        if not self._indexed:
            await self._chunks.create_index(
                [("files_id", ASCENDING), ("n", ASCENDING)], unique=True
            )
            self._indexed = True

    async def put(self, *, data: bytes) -> str:
        """Store ``data`` unless a file with the same content exists; its file id."""
        [file_id] = await self.put_many(contents=[data])
        return file_id

    async def put_many(self, *, contents: Sequence[bytes]) -> list[str]:
        """:meth:`put` for each content, in order, in few round trips: one to find the files
        stored before, then the chunks of the new ones in batches, then their file documents."""
        ids = [await content_id(data) for data in contents]
        stored = self._files.find({"_id": {"$in": sorted(set(ids))}}, {"_id": 1})
        found = {doc["_id"] async for doc in stored}
        new = {file_id: data for file_id, data in zip(ids, contents, strict=True)}
        new = {file_id: data for file_id, data in new.items() if file_id not in found}
        if not new:
            return ids
        await self._ensure_index()
        batch: list[UpdateOne] = []
        for file_id, data in new.items():
            view = memoryview(data)
            for start in range(0, len(data), CHUNK_SIZE):
                chunk = Binary(bytes(view[start : start + CHUNK_SIZE]))
                batch.append(
                    UpdateOne(
                        {"files_id": file_id, "n": start // CHUNK_SIZE},
                        {"$setOnInsert": {"data": chunk}},
                        upsert=True,
                    )
                )
                if len(batch) == CHUNKS_PER_WRITE:
                    await self._write_chunks(batch)
                    batch = []
        if batch:
            await self._write_chunks(batch)
        now = utcnow()
        files = [
            {"_id": i, "length": len(d), "chunkSize": CHUNK_SIZE, "uploadDate": now, "filename": i}
            for i, d in new.items()
        ]
        try:
            await self._files.insert_many(files, ordered=False)
        except BulkWriteError as exc:
            _only_duplicates(exc)  # a concurrent writer of the same content finished first
        return ids

    async def _write_chunks(self, writes: list[UpdateOne]) -> None:
        try:
            await self._chunks.bulk_write(writes, ordered=False)
        except BulkWriteError as exc:
            _only_duplicates(exc)  # two upserts of one chunk at once: the same bytes

    async def read(self, *, file_id: str) -> bytes:
        """The whole content of a file."""
        return b"".join([chunk async for chunk in await self.open(file_id=file_id)])

    async def open(self, *, file_id: str) -> AsyncIterator[bytes]:
        """The content of a file chunk by chunk (one chunk in memory at a time)."""
        try:
            stream = await self._bucket.open_download_stream(file_id)
        except NoFile:
            raise NotFound(f"no attachment file {file_id}") from None

        async def chunks() -> AsyncIterator[bytes]:
            try:
                with mongo_errors("AttachmentRepo.open"):
                    while chunk := await stream.readchunk():
                        yield bytes(chunk)
            finally:
                await stream.close()

        return chunks()

    async def count(self) -> int:
        """How many distinct files are stored."""
        return await self._files.count_documents({})
