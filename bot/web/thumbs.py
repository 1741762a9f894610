"""Thumbnails for the gallery: made once per job from its main picture (the grid, else the first
image, from the media cache) and kept on disk beside the cache; later requests read the file."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from PIL import Image

from bot.config import DEFAULT_MAX_PIXELS
from bot.media import write_atomic

SIDE = 384  # the longer side of a thumbnail in pixels (a gallery cell is at most about 300 CSS px)


def _thumbnail(data: bytes, side: int, max_pixels: int) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        if image.width * image.height > max_pixels:
            raise ValueError("image too large")
        image.thumbnail((side, side), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        image.convert("RGB").save(out, "JPEG", quality=82)
        return out.getvalue()


class ThumbCache:
    def __init__(self, directory: Path, side: int = SIDE, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self._dir = directory
        self._side = side
        self._max_pixels = max_pixels
        self._locks: dict[str, asyncio.Lock] = {}
        self.hits = 0
        self.misses = 0

    def path(self, key: str) -> Path:
        return self._dir / f"{key}.jpg"

    async def get(self, key: str, source: bytes | None = None) -> bytes | None:
        """The cached thumbnail of `key` (a job id), made from `source` when there is none yet; None
        when there is none and no source to make it from."""
        path = self.path(key)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            try:
                data = await asyncio.to_thread(path.read_bytes)
                self.hits += 1
                return data
            except FileNotFoundError:
                if source is None:
                    return None
            self.misses += 1
            data = await asyncio.to_thread(_thumbnail, source, self._side, self._max_pixels)
            await asyncio.to_thread(write_atomic, path, data)
        self._locks.pop(key, None)
        return data

