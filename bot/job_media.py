"""JobMedia: a finished job's images and videos as bytes, fetched once through the media cache.

Frontends and the CLI upload bytes, never a provider's (expiring) URLs; this is where they get them.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot import media
from bot.domain import Job
from bot.errors import JobNotFinished
from bot.pool import ProviderPool


@dataclass(frozen=True)
class JobFiles:
    """A finished job's media as bytes: the grid (if any), the single images, the videos."""

    grid: bytes | None
    images: list[bytes]
    videos: list[bytes]


class JobMedia:
    def __init__(self, pool: ProviderPool, cache: media.MediaCache) -> None:
        self._pool = pool
        self._cache = cache

    async def files(self, job: Job, *, tiles: bool = True) -> JobFiles:
        """Download (once, via the cache) a finished job's media. Tiles are cut from the grid when the
        provider gave no separate images; `tiles=False` skips them when there is a grid (a chat that
        shows only the grid needs no four extra downloads)."""
        if job.result is None:
            raise JobNotFinished(f"Job {job.id} has no result yet.")
        grid = await self._download(job, job.result.grid_url) if job.result.grid_url else None
        images: list[bytes] = []
        if tiles or grid is None:
            images = [await self._download(job, url) for url in job.result.image_urls]
        if grid is not None and not images and tiles:
            images = await media.split_grid(grid, max_pixels=self._cache.downloader.config.max_pixels)
        videos = [await self._download(job, url) for url in job.result.video_urls]
        return JobFiles(grid, images, videos)

    async def preview(self, job: Job) -> bytes | None:
        """The job's current preview image, fetched fresh (previews are transient: not cached)."""
        if not job.preview_url:
            return None
        provider = self._pool.get(job.provider)
        url = provider.locate(job.preview_url)
        return await self._cache.downloader.fetch(url, trusted=provider.trusts_url(url))

    async def _download(self, job: Job, url: str) -> bytes:
        provider = self._pool.get(job.provider)
        source = provider.locate(url)
        return await self._cache.get(url, source=source, trusted=provider.trusts_url(source))
