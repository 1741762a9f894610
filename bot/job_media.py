"""JobMedia: a finished job's images and videos as bytes, fetched once through the media cache.

Frontends and the CLI upload bytes, never a provider's (expiring) URLs; this is where they get them.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot import media
from bot.domain import Job
from bot.errors import JobNotFinished
from bot.i18n import t
from bot.pool import ProviderPool


@dataclass(frozen=True)
class JobFiles:
    """A finished job's media as bytes: the grid (if any), the single images, the videos."""

    grid: bytes | None
    images: list[bytes]
    videos: list[bytes]


@dataclass(frozen=True)
class Result:
    """What a chat shows of a finished job: its main picture (the grid, else the first image) fitted to
    the platform's cap, the single image as it came (when there is no grid: a full-size copy may go out
    besides), and the videos as they came (each frontend decides what fits)."""

    main: bytes | None
    single: bytes | None
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
            raise JobNotFinished(t("Job {id} has no result yet.", id=job.id))
        grid = await self._download(job, job.result.grid_url) if job.result.grid_url else None
        images: list[bytes] = []
        if tiles or grid is None:
            images = [await self._download(job, url) for url in job.result.image_urls]
        if grid is not None and not images and tiles:
            images = await media.split_grid(grid, max_pixels=self._cache.downloader.config.max_pixels)
        videos = [await self._download(job, url) for url in job.result.video_urls]
        return JobFiles(grid, images, videos)

    async def result(self, job: Job, max_bytes: int, max_side: int | None = None, *,
                     files: JobFiles | None = None) -> Result:
        """The finished job's picture to show, chosen and fitted once for every frontend (`files`: the
        job's files when the caller has them already)."""
        files = files or await self.files(job, tiles=False)
        main = files.grid or (files.images[0] if files.images else None)
        fitted = await media.fit(main, max_bytes, max_side) if main is not None else None
        single = files.images[0] if files.grid is None and files.images else None
        return Result(fitted, single, files.videos)

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
