"""Media: safe downloads from a loopback server, grid splitting and re-encoding under a byte cap."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web
from PIL import Image

from bot.config import MediaConfig
from bot.errors import BadImage
from bot.media import Downloader, check_image, fit, sniff, split_grid
from tests.core.conftest import png, size_of
from tests.fakes._server import FakeServer

PNG = png(64, 48)
BIG = png(200, 200, noise=True)


class Files(FakeServer):
    """Serves fixed bodies, with and without a Content-Length."""

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/img.png", self._png), web.get("/big.png", self._big), web.get("/text", self._text),
                web.get("/stream", self._stream), web.get("/missing", self._missing)]  # fmt: skip

    async def _png(self, request: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    async def _big(self, request: web.Request) -> web.Response:
        return web.Response(body=BIG, content_type="image/png")

    async def _text(self, request: web.Request) -> web.Response:
        return web.Response(text="<html>not an image</html>", content_type="image/png")

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()  # chunked: the size is only known while reading
        await response.prepare(request)
        for start in range(0, len(BIG), 4096):
            await response.write(BIG[start : start + 4096])
        await response.write_eof()
        return response

    async def _missing(self, request: web.Request) -> web.Response:
        raise web.HTTPNotFound()


@pytest.fixture
async def files() -> AsyncIterator[Files]:
    async with Files() as server:
        yield server


def downloader(client: httpx.AsyncClient, **settings: object) -> Downloader:
    return Downloader(client, MediaConfig(**settings))  # type: ignore[arg-type]


async def test_loopback_download_when_allowed(files: Files) -> None:
    async with httpx.AsyncClient() as client:
        assert (
            await downloader(client, allow_private_addresses=True).fetch(f"{files.base_url}/img.png") == PNG
        )
        assert await downloader(client).fetch(f"{files.base_url}/img.png", trusted=True) == PNG


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "10.1.2.3",
        "192.168.0.10",
        "169.254.169.254",
        "[::1]",
        "0.0.0.0",
        "[fe80::1]",
    ],
)
async def test_private_loopback_and_link_local_refused(files: Files, host: str) -> None:
    async with httpx.AsyncClient() as client:
        with pytest.raises(BadImage, match="not a public"):
            await downloader(client).fetch(f"http://{host}:{files.port}/img.png")
    assert files.requests == []


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/a.png", "file:///etc/passwd", "data:image/png;base64,AAAA", "x"]
)
async def test_only_http_schemes(url: str) -> None:
    async with httpx.AsyncClient() as client:
        for trusted in (False, True):
            with pytest.raises(BadImage, match="http"):
                await downloader(client, allow_private_addresses=True).fetch(url, trusted=trusted)


@pytest.mark.parametrize("path", ["/big.png", "/stream"])
async def test_size_cap(files: Files, path: str) -> None:
    async with httpx.AsyncClient() as client:
        loader = downloader(client, allow_private_addresses=True)
        with pytest.raises(BadImage, match="limit"):
            await loader.fetch(files.base_url + path, max_bytes=len(BIG) // 2)
        assert await loader.fetch(files.base_url + path, max_bytes=len(BIG)) == BIG


async def test_non_image_and_http_errors(files: Files) -> None:
    async with httpx.AsyncClient() as client:
        loader = downloader(client, allow_private_addresses=True)
        with pytest.raises(BadImage, match="not an image"):
            await loader.fetch(f"{files.base_url}/text")
        with pytest.raises(BadImage, match="HTTP 404"):
            await loader.fetch(f"{files.base_url}/missing")
        await files.stop()
        with pytest.raises(BadImage, match="network"):
            await loader.fetch(f"{files.base_url}/img.png")


def test_sniff_and_check_image() -> None:
    jpeg = io.BytesIO()
    Image.new("RGB", (8, 8)).save(jpeg, "JPEG")
    webp = io.BytesIO()
    Image.new("RGB", (8, 8)).save(webp, "WEBP")
    assert sniff(PNG) == "image/png" and sniff(jpeg.getvalue()) == "image/jpeg"
    assert sniff(webp.getvalue()) == "image/webp" and sniff(b"GIF89a....") == "image/gif"
    assert sniff(b"....WEBPxxxx") is None  # WEBP needs its RIFF header
    assert check_image(PNG, 10_000) == "image/png"
    with pytest.raises(BadImage, match="not an image"):
        check_image(b"%PDF-1.7 ...", 10_000, "Image 2")
    with pytest.raises(BadImage, match="not an image"):
        check_image(b"\x00\x00\x00\x18ftypmp42", 10_000)  # a video is not an image
    with pytest.raises(BadImage, match="limit") as err:
        check_image(BIG, 1024, "Image 1")
    assert err.value.message.startswith("Image 1")


def _quadrants(width: int, height: int) -> bytes:
    image = Image.new("RGB", (width, height))
    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    for (x, y), color in zip([(0, 0), (1, 0), (0, 1), (1, 1)], colors, strict=True):
        image.paste(color, (x * width // 2, y * height // 2, (x + 1) * width // 2, (y + 1) * height // 2))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


async def test_split_grid_order_and_size() -> None:
    tiles = await split_grid(_quadrants(320, 180))
    assert len(tiles) == 4 and len(set(tiles)) == 4
    expected = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]  # U1 TL, U2 TR, U3 BL, U4 BR
    for tile, color in zip(tiles, expected, strict=True):
        assert sniff(tile) == "image/jpeg"
        with Image.open(io.BytesIO(tile)) as image:
            assert image.size == (160, 90)
            center = image.convert("RGB").getpixel((80, 45))
        assert isinstance(center, tuple)
        assert all(abs(a - b) < 16 for a, b in zip(center, color, strict=True))


async def test_split_grid_of_garbage() -> None:
    with pytest.raises(BadImage, match="decoded"):
        await split_grid(b"\x89PNG\r\n\x1a\nnot really")


async def test_fit_reencodes_under_a_cap() -> None:
    assert await fit(PNG, len(PNG)) == PNG  # already fits: untouched
    cap = len(BIG) // 4
    small = await fit(BIG, cap)
    assert len(small) <= cap and sniff(small) == "image/jpeg"
    tiny = await fit(png(500, 500, noise=True), 20_000)
    assert len(tiny) <= 20_000
    capped = await fit(PNG, 10_000_000, max_side=32)
    assert max(size_of(capped)) == 32
