"""Media: safe downloads (scheme, address, size, time, magic checks), a disk cache, upload checks, grid
splitting, re-encoding.

Pillow work runs in a thread (`asyncio.to_thread`) so the event loop never stalls on it. Every image is
opened through `_header` (a pixel limit checked before any pixel is decoded) and every Pillow failure
becomes a BadImage that says what is wrong, never a traceback.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import ipaddress
import logging
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from PIL import GifImagePlugin, Image, ImageFile, JpegImagePlugin, PngImagePlugin, WebPImagePlugin

from bot.config import DEFAULT_MAX_PIXELS, MediaConfig
from bot.errors import BadImage
from bot.i18n import t

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


#: The file extension of each media type we handle (the names uploads and saved files get).
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp",
              "video/mp4": "mp4", "video/webm": "webm"}  # fmt: skip


def extension(data: bytes, default: str = "png") -> str:
    """The file extension `data` should be saved or uploaded under."""
    return EXTENSIONS.get(sniff(data) or "", default)


def sniff(data: bytes) -> str | None:
    """The media type from the leading bytes, or None if it is not an image or video we handle."""
    for magic, offset, mime in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            if mime == "image/webp" and not data.startswith(b"RIFF"):
                continue
            return mime
    return None


#: The decoder of each image type we accept, opened directly rather than through `Image.open`: that one
#: applies Pillow's process-wide bomb check to the header, which between 89 and 179 MP only warns (a log
#: line in production, an error under pytest) and names no size. `_header` checks our own, stricter
#: limit first and says what the size is.
_DECODERS: dict[str, type[ImageFile.ImageFile]] = {
    "image/png": PngImagePlugin.PngImageFile,
    "image/jpeg": JpegImagePlugin.JpegImageFile,
    "image/gif": GifImagePlugin.GifImageFile,
    "image/webp": WebPImagePlugin.WebPImageFile,
}
def _declared_size(data: bytes) -> tuple[int, int] | None:
    """The size a PNG or GIF header claims, read by hand: Pillow refuses a 0×0 one without saying so."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data.startswith((b"GIF87a", b"GIF89a")) and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    return None


def _decode_error(data: bytes, what: str, exc: Exception) -> BadImage:
    size = _declared_size(data)
    if size is not None and 0 in size:
        return BadImage(t("{what} is {width}×{height}: it has no pixels.", what=what, width=size[0],
                          height=size[1]))
    if data.startswith(b"\x89PNG"):  # Pillow's words for a cut PNG vary: its chunks say it exactly
        cut = data[12:16] == b"IHDR" and b"IEND" not in data
    else:
        cut = isinstance(exc, EOFError) or "truncated" in str(exc).lower()
    if cut:
        return BadImage(t("{what} is truncated: the file ends before the image does.", what=what))
    if isinstance(exc, Image.DecompressionBombError | Image.DecompressionBombWarning | MemoryError):
        return BadImage(t("{what} is too large to decode.", what=what))
    return BadImage(t("{what} could not be decoded: the file is damaged or not a complete image.", what=what))


@contextmanager
def _decoding(data: bytes, what: str) -> Iterator[None]:
    """Pillow's failures on `data` as a BadImage. Broken or hostile input makes its decoders raise many
    unrelated types (OSError, SyntaxError, ValueError, struct.error, EOFError, MemoryError, the bomb
    error and warning); each means only "this image cannot be used", hence the broad except."""
    try:
        yield
    except BadImage:
        raise
    except Exception as exc:
        raise _decode_error(data, what, exc) from exc


def _header(data: bytes, max_pixels: int, what: str) -> ImageFile.ImageFile:
    """`data` opened (header read, no pixels decoded yet), with a size of at least 1×1 within `max_pixels`."""
    decoder = _DECODERS.get(sniff(data) or "")
    if decoder is None:
        raise BadImage(t("{what} is not an image (PNG, JPEG, GIF or WEBP).", what=what))
    with _decoding(data, what):
        image = decoder(io.BytesIO(data))
    width, height = image.size
    if width < 1 or height < 1:
        raise BadImage(t("{what} is {width}×{height}: it has no pixels.", what=what, width=width,
                         height=height))
    if width * height > max_pixels:
        raise BadImage(t("{what} is too large: {width}×{height} pixels; the limit is {pixels} pixels "
                         "(about {megapixels} megapixels).", what=what, width=width, height=height,
                         pixels=format(max_pixels, ","),
                         megapixels=format(max_pixels / 1e6, ".0f")))  # fmt: skip
    return image


def check_image(
    data: bytes, max_bytes: int, what: str | None = None, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> str:
    """The image's media type; BadImage with a specific reason if it is not an acceptable image: too many
    bytes, not an image, no pixels or too many, truncated or damaged. The pixels are decoded here, before
    anything is charged or sent. A JPEG decodes at 1/8 scale: every byte of it is still read and checked,
    at half the cost (a 4000×4000 photo takes tens of ms, so this may run on the event loop)."""
    what = what or t("The file")
    if len(data) > max_bytes:
        raise BadImage(t("{what} is {size} MB; the limit is {limit} MB.", what=what,
                         size=format(len(data) / 1e6, ".1f"), limit=format(max_bytes / 1e6, ".1f")))
    mime = sniff(data)
    if mime is None or not mime.startswith("image/"):
        raise BadImage(t("{what} is not an image (PNG, JPEG, GIF or WEBP).", what=what))
    image = _header(data, max_pixels, what)
    with _decoding(data, what):
        image.draft(None, (max(1, image.width // 8), max(1, image.height // 8)))  # only JPEG implements it
        image.load()
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

    @property
    def config(self) -> MediaConfig:
        return self._config

    async def _check_address(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadImage(t("Only http(s) links can be fetched."))
        if self._config.allow_private_addresses:
            return
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(parts.hostname, parts.port or 443)
        except OSError as exc:
            raise BadImage(t("The address {host} could not be resolved.", host=parts.hostname)) from exc
        if not all(_is_public(str(info[4][0])) for info in infos):
            raise BadImage(t("The address {host} is not a public internet address.", host=parts.hostname))

    async def fetch(self, url: str, *, trusted: bool = False, max_bytes: int | None = None) -> bytes:
        """The body at `url`. `trusted` skips the address check (a provider's own host)."""
        if not trusted:
            await self._check_address(url)
        elif urlsplit(url).scheme not in ("http", "https"):
            raise BadImage(t("Only http(s) links can be fetched."))
        deadline = self._config.download_deadline
        try:
            # download_timeout bounds each read; a server trickling a byte at a time never hits it
            async with asyncio.timeout(deadline):
                data = await self._read(url, max_bytes or self._config.max_download_bytes)
        except TimeoutError as exc:
            raise BadImage(t("The image could not be downloaded within {seconds} s "
                             "(the server sent it too slowly).",
                             seconds=format(deadline, "g"))) from exc  # fmt: skip
        if sniff(data) is None:
            raise BadImage(t("The downloaded file is not an image or video."))
        return data

    async def _read(self, url: str, cap: int) -> bytes:
        try:
            async with self._client.stream(
                "GET", url, timeout=self._config.download_timeout, follow_redirects=False
            ) as response:
                if response.status_code != 200:
                    raise BadImage(t("The image could not be downloaded (HTTP {status}).",
                                     status=response.status_code))
                declared = int(response.headers.get("content-length") or 0)
                if declared > cap:
                    raise BadImage(t("The file is {size} MB; the limit is {limit} MB.",
                                     size=format(declared / 1e6, ".1f"), limit=format(cap / 1e6, ".1f")))
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > cap:
                        raise BadImage(t("The file is larger than the {limit} MB limit.",
                                         limit=format(cap / 1e6, ".1f")))
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise BadImage(t("The image could not be downloaded (network error or timeout).")) from exc
        return b"".join(chunks)


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
            await asyncio.to_thread(write_atomic, path, data)
        self._locks.pop(path.name, None)
        return data


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` whole or not at all (a crash mid-write leaves no half file under the name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.replace(path)


def _open(data: bytes, max_pixels: int, what: str | None = None) -> Image.Image:
    """`data` decoded (RGB or L) within `max_pixels`; BadImage saying why when it cannot be."""
    what = what or t("The image")
    image = _header(data, max_pixels, what)
    with _decoding(data, what):
        image.load()
        return image.convert("RGB") if image.mode not in ("RGB", "L") else image


def _jpeg(image: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, optimize=False)
    return out.getvalue()


def _split_grid(data: bytes, max_pixels: int) -> list[bytes]:
    image = _open(data, max_pixels)
    w, h = image.size
    boxes = [(0, 0, w // 2, h // 2), (w // 2, 0, w, h // 2), (0, h // 2, w // 2, h), (w // 2, h // 2, w, h)]
    return [_jpeg(image.crop(box)) for box in boxes]


def _fit(data: bytes, max_bytes: int, max_side: int | None, max_pixels: int) -> bytes:
    if len(data) <= max_bytes and max_side is None:
        return data
    image = _open(data, max_pixels)
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


async def split_grid(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> list[bytes]:
    """Four JPEG tiles: U1 top-left, U2 top-right, U3 bottom-left, U4 bottom-right."""
    return await asyncio.to_thread(_split_grid, data, max_pixels)


async def fit(
    data: bytes, max_bytes: int, max_side: int | None = None, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> bytes:
    """`data` unchanged if it fits, else re-encoded (JPEG, then smaller) to at most `max_bytes`."""
    return await asyncio.to_thread(_fit, data, max_bytes, max_side, max_pixels)


async def image_size(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    def size() -> tuple[int, int]:
        return _open(data, max_pixels).size

    return await asyncio.to_thread(size)


def region_mask(
    data: bytes, size: tuple[int, int] | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
) -> bytes:
    """Vary (Region)'s mask: `data` (an image; white = the region) as a black/white PNG, of `size` when
    given (else its own). BadImage when it is not an image or marks nothing."""
    image = _open(data, max_pixels, t("The mask")).convert("L")
    if size is not None and image.size != size:
        image = image.resize(size, Image.Resampling.NEAREST)
    grey = image.point(lambda v: 255 if v >= 128 else 0)
    if grey.getextrema()[1] == 0:
        raise BadImage(t("The region to vary is empty: draw over the part of the image to change."))
    out = io.BytesIO()
    grey.convert("1").save(out, "PNG", optimize=True)
    return out.getvalue()
