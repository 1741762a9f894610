"""Inputs kept apart from job rows: uploaded images stored once by content (sha256), and the photos of
albums seen in a chat (for /blend), both in the database so every worker of a shared one can read them.

A job's request names its images by sha256 (`ImageInput.sha256`); their bytes are loaded only when
the job is submitted (`Inputs.load`), so a progress update never carries them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from bot.errors import UserError
from bot.i18n import t
from bot.store import sql
from bot.store.engine import Engine
from providers.base import GenerationRequest, ImageInput


class Inputs:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def keep(self, images: Sequence[ImageInput], now: float) -> tuple[ImageInput, ...]:
        """Store each image's bytes (once per content); the images as references (bytes still in hand)."""
        kept = []
        for image in images:
            if image.sha256 is None:
                digest = hashlib.sha256(image.data).hexdigest()
                values = (digest, image.mime, len(image.data), image.data, now)
                await self._engine.execute(sql.PUT_BLOB, values)
                image = image.model_copy(update={"sha256": digest})
            kept.append(image)
        return tuple(kept)

    async def exists(self, sha256: str) -> bool:
        return bool(await self._engine.rows(sql.HAS_BLOB, (sha256,)))

    async def use(self, job_id: str, images: Sequence[ImageInput]) -> None:
        """Record that `job_id` uses these stored images (they are kept while it is)."""
        for digest in {image.sha256 for image in images if image.sha256}:
            await self._engine.execute(sql.USE_BLOB, (job_id, digest))

    async def load(self, request: GenerationRequest) -> GenerationRequest:
        """`request` with the bytes of its stored images filled in (for a submit)."""
        wanted = sorted({image.sha256 for image in request.images if not image.loaded and image.sha256})
        if not wanted:
            return request
        rows = await self._engine.rows(sql.GET_BLOBS, (json.dumps(wanted),))
        found = {str(digest): bytes(data) for digest, data in rows}
        if missing := [digest for digest in wanted if digest not in found]:
            raise UserError(t("An image of this job is no longer stored ({digest}…); send it again.",
                              digest=missing[0][:12]))
        images = tuple(image if image.loaded or image.sha256 is None
                       else image.model_copy(update={"data": found[image.sha256]})
                       for image in request.images)  # fmt: skip
        return request.model_copy(update={"images": images})


class Albums:
    """Photos of Telegram albums (media groups) seen in a chat, by album, in the order they were sent."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def add(self, chat_id: str, group_id: str, message_id: int, file_id: str, now: float) -> None:
        await self._engine.execute(sql.ADD_ALBUM_PHOTO, (chat_id, group_id, message_id, file_id, now))

    async def photos(self, chat_id: str, group_id: str) -> list[str]:
        return [str(row[0]) for row in await self._engine.rows(sql.ALBUM_PHOTOS, (chat_id, group_id))]
