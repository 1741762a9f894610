"""Media: safe downloads (scheme, address, size, magic checks), a disk cache, grid splitting, re-encoding.

Pillow work runs in a thread (`asyncio.to_thread`) so the event loop never stalls on it.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import ipaddress
import logging
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from PIL import Image, UnidentifiedImageError

from bot.config import MediaConfig
from bot.errors import BadImage

log = logging.getLogger(__name__)

_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),
    (b"ftyp", 4, "video/mp4"),
    (b"\x1aE\xdf\xa3", 0, "video/webm"),
)


def sniff(data: bytes) -> str | None:
    """The media type from the leading bytes, or None if it is not an image or video we handle."""
    for magic, offset, mime in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            if mime == "image/webp" and not data.startswith(b"RIFF"):
                continue
            return mime
    return None


def check_image(data: bytes, max_bytes: int, what: str = "The file") -> str:
    """The image's media type; BadImage with a specific reason if it is not an acceptable image."""
    if len(data) > max_bytes:
        raise BadImage(f"{what} is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB.")
    mime = sniff(data)
    if mime is None or not mime.startswith("image/"):
        raise BadImage(f"{what} is not an image (PNG, JPEG, GIF or WEBP).")
    return mime


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast
                or ip.is_unspecified)


class Downloader:
    """Fetches http(s) media with a timeout, a size cap and a magic check; refuses private addresses."""

    def __init__(self, client: httpx.AsyncClient, config: MediaConfig) -> None:
        self._client = client
        self._config = config

    async def _check_address(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadImage("Only http(s) links can be fetched.")
        if self._config.allow_private_addresses:
            return
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(parts.hostname, parts.port or 443)
        except OSError as exc:
            raise BadImage(f"The address {parts.hostname} could not be resolved.") from exc
        if not all(_is_public(str(info[4][0])) for info in infos):
            raise BadImage(f"The address {parts.hostname} is not a public internet address.")

    async def fetch(self, url: str, *, trusted: bool = False, max_bytes: int | None = None) -> bytes:
        """The body at `url`. `trusted` skips the address check (a provider's own host)."""
        cap = max_bytes or self._config.max_download_bytes
        if not trusted:
            await self._check_address(url)
        elif urlsplit(url).scheme not in ("http", "https"):
            raise BadImage("Only http(s) links can be fetched.")
        try:
            async with self._client.stream(
                "GET", url, timeout=self._config.download_timeout, follow_redirects=False
            ) as response:
                if response.status_code != 200:
                    raise BadImage(f"The image could not be downloaded (HTTP {response.status_code}).")
                declared = int(response.headers.get("content-length") or 0)
                if declared > cap:
                    raise BadImage(f"The file is {declared / 1e6:.1f} MB; the limit is {cap / 1e6:.1f} MB.")
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > cap:
                        raise BadImage(f"The file is larger than the {cap / 1e6:.1f} MB limit.")
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise BadImage("The image could not be downloaded (network error or timeout).") from exc
        data = b"".join(chunks)
        if sniff(data) is None:
            raise BadImage("The downloaded file is not an image or video.")
        return data


class MediaCache:
    """Provider results, downloaded once and kept on disk (provider URLs expire)."""

    def __init__(self, downloader: Downloader, directory: Path) -> None:
        self.downloader = downloader
        self._dir = directory
        self._locks: dict[str, asyncio.Lock] = {}

    def _path(self, url: str) -> Path:
        return self._dir / hashlib.sha256(url.encode()).hexdigest()

    async def get(self, url: str, *, source: str | None = None, trusted: bool = False) -> bytes:
        """The bytes of `url`, from disk when seen before, else fetched from `source` (default `url`)."""
        path = self._path(url)
        lock = self._locks.setdefault(path.name, asyncio.Lock())
        async with lock:
            try:
                return await asyncio.to_thread(path.read_bytes)
            except FileNotFoundError:
                pass
            data = await self.downloader.fetch(source or url, trusted=trusted)
            await asyncio.to_thread(_write_atomic, path, data)
        self._locks.pop(path.name, None)
        return data


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.replace(path)


def _open(data: bytes) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise BadImage("The image could not be decoded.") from exc
    return image.convert("RGB") if image.mode not in ("RGB", "L") else image


def _jpeg(image: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, optimize=False)
    return out.getvalue()


def _split_grid(data: bytes) -> list[bytes]:
    image = _open(data)
    w, h = image.size
    boxes = [(0, 0, w // 2, h // 2), (w // 2, 0, w, h // 2), (0, h // 2, w // 2, h), (w // 2, h // 2, w, h)]
    return [_jpeg(image.crop(box)) for box in boxes]


def _fit(data: bytes, max_bytes: int, max_side: int | None) -> bytes:
    if len(data) <= max_bytes and max_side is None:
        return data
    image = _open(data)
    side_too_big = max_side is not None and max(image.size) > max_side
    if len(data) <= max_bytes and not side_too_big:
        return data
    if max_side is not None and side_too_big:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    for quality in (90, 82, 74, 65):
        out = _jpeg(image, quality)
        if len(out) <= max_bytes:
            return out
    while len(out) > max_bytes and image.width > 64:
        image = image.resize((max(1, image.width * 3 // 4), max(1, image.height * 3 // 4)))
        out = _jpeg(image, 80)
    return out


async def split_grid(data: bytes) -> list[bytes]:
    """Four JPEG tiles: U1 top-left, U2 top-right, U3 bottom-left, U4 bottom-right."""
    return await asyncio.to_thread(_split_grid, data)


async def fit(data: bytes, max_bytes: int, max_side: int | None = None) -> bytes:
    """`data` unchanged if it fits, else re-encoded (JPEG, then smaller) to at most `max_bytes`."""
    return await asyncio.to_thread(_fit, data, max_bytes, max_side)


async def image_size(data: bytes) -> tuple[int, int]:
    def size() -> tuple[int, int]:
        return _open(data).size

    return await asyncio.to_thread(size)
