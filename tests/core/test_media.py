"""Media: safe downloads from a loopback server, grid splitting and re-encoding under a byte cap."""

from __future__ import annotations

import asyncio
import io
import os
import struct
import sys
import time
import zlib
from collections.abc import AsyncIterator
from functools import cache
from pathlib import Path

import httpx
import pytest
import yaml
from aiohttp import web
from PIL import Image

from bot.config import MediaConfig
from bot.errors import BadImage, ExitCode
from bot.media import Downloader, check_image, fit, image_size, sniff, split_grid
from tests.core.conftest import png, size_of
from tests.fakes._server import FakeServer
from tests.fakes.mj_proxy import MjProxyFake
from tests.providers.test_mj_proxy import make_config as mj_proxy_config

ROOT = Path(__file__).resolve().parents[2]
PNG = png(64, 48)
BIG = png(200, 200, noise=True)


class Files(FakeServer):
    """Serves fixed bodies, with and without a Content-Length."""

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/img.png", self._png), web.get("/big.png", self._big), web.get("/text", self._text),
                web.get("/stream", self._stream), web.get("/missing", self._missing),
                web.get("/trickle", self._trickle)]  # fmt: skip

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

    async def _trickle(self, request: web.Request) -> web.StreamResponse:
        """A byte every 50 ms: each read is quick, the whole body takes far longer than any deadline."""
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        await response.prepare(request)
        try:
            for i in range(len(PNG)):
                await response.write(PNG[i : i + 1])
                await asyncio.sleep(0.05)
        except ConnectionError:
            pass  # the client gave up: that is the point
        return response


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


async def test_a_trickling_download_ends_at_its_deadline(files: Files) -> None:
    """Every read arrives well within download_timeout; the deadline bounds the whole download."""
    async with httpx.AsyncClient() as client:
        loader = downloader(client, allow_private_addresses=True, download_timeout=1.0, download_deadline=0.3)
        started = time.monotonic()
        async with asyncio.timeout(3):  # without a deadline the body would take len(PNG) * 50 ms
            with pytest.raises(BadImage, match=r"within 0.3 s \(the server sent it too slowly\)"):
                await loader.fetch(f"{files.base_url}/trickle")
        assert time.monotonic() - started < 1.0
        assert await loader.fetch(f"{files.base_url}/img.png") == PNG  # a prompt server is unaffected


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


# -- images that cannot be used: uploads refused before anything is charged, results as user errors --


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_claiming(width: int, height: int, rows: int = 1) -> bytes:
    """An 8-bit RGB PNG whose header claims `width`×`height`, followed by only `rows` short rows of
    pixels: the header alone decides what a decoder would allocate."""
    raw = b"".join(b"\x00" + bytes(3 * min(width, 64)) for _ in range(rows))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunks = _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


@cache
def _bomb(side: int = 10_000) -> bytes:
    """A complete, valid grey PNG of `side`² black pixels: ~100 KB that decode to 100 MB."""
    packer = zlib.compressobj()
    row = bytes(side + 1)  # filter byte + one byte per pixel
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def _jpeg_bytes(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.effect_noise((width, height), 60).convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


def _damaged_png() -> bytes:
    data = bytearray(BIG)
    start = data.index(b"IDAT") + 4
    data[start : start + 200] = bytes(200)  # the compressed pixels, zeroed: not a valid zlib stream
    return bytes(data)


UNUSABLE = {
    "truncated PNG": (BIG[: len(BIG) // 2], "is truncated"),
    "truncated PNG header": (BIG[:40], "is truncated"),
    "truncated JPEG": (_jpeg_bytes(300, 300)[:-2000], "is truncated"),
    "damaged PNG": (_damaged_png(), "could not be decoded"),
    "0×0 PNG": (_png_claiming(0, 0), "is 0×0: it has no pixels"),
    "65535² header": (_png_claiming(65535, 65535), "too large: 65535×65535 pixels; the limit is 50,000,000"),
    "2³¹-pixel header": (_png_claiming(46341, 46341), "too large: 46341×46341 pixels"),
    "100 MP header": (_png_claiming(10_000, 10_000), "too large: 10000×10000 pixels"),  # Pillow only warns
    "30000² grid": (_png_claiming(30_000, 30_000), "too large: 30000×30000 pixels"),  # Pillow raises
}


@pytest.mark.parametrize("case", list(UNUSABLE))
def test_uploads_are_decoded_before_they_are_accepted(case: str) -> None:
    data, reason = UNUSABLE[case]
    assert sniff(data) is not None  # every one of them passes a magic-bytes check
    with pytest.raises(BadImage, match=reason) as err:
        check_image(data, 32 * 1024 * 1024, "Image 2")
    assert err.value.message.startswith("Image 2 ")


def test_a_decompression_bomb_upload_is_refused() -> None:
    bomb = _bomb()
    assert len(bomb) < 200_000
    with pytest.raises(BadImage, match=r"Image 1 is too large: 10000×10000 pixels"):
        check_image(bomb, 32 * 1024 * 1024, "Image 1")


def test_the_pixel_limit_is_configurable() -> None:
    image = png(200, 200)
    assert check_image(image, 1_000_000, max_pixels=40_000) == "image/png"
    with pytest.raises(BadImage, match="too large: 200×200 pixels; the limit is 39,999"):
        check_image(image, 1_000_000, max_pixels=39_999)
    with pytest.raises(ValueError, match="max_pixels"):
        MediaConfig(max_pixels=200_000_000)  # above Pillow's own bomb limit, which would refuse first


def test_a_large_jpeg_upload_is_checked_quickly() -> None:
    """The check decodes every byte, on the event loop: it has to stay cheap for a camera-sized photo."""
    data = _jpeg_bytes(4000, 4000)
    started = time.perf_counter()
    assert check_image(data, 64 * 1024 * 1024) == "image/jpeg"
    assert time.perf_counter() - started < 1.0
    with pytest.raises(BadImage, match="truncated"):
        check_image(data[: len(data) * 3 // 4], 64 * 1024 * 1024)  # the cut is found, even at 1/8 scale


@pytest.mark.parametrize(
    "case", ["truncated PNG", "damaged PNG", "65535² header", "100 MP header", "30000² grid"]
)
async def test_unusable_results_are_user_errors(case: str) -> None:
    """What a provider sends goes through the same checks: a user error naming the problem, never a
    Pillow exception (a DecompressionBombError, or its warning, which pytest turns into an error)."""
    data, reason = UNUSABLE[case]
    with pytest.raises(BadImage, match=reason):
        await split_grid(data)
    with pytest.raises(BadImage, match=reason):
        await fit(data, len(data) // 2)  # over the byte cap: re-encoded
    with pytest.raises(BadImage, match=reason):
        await fit(data, 10**9, max_side=64)  # may be over the side cap: decoded to see
    with pytest.raises(BadImage, match=reason):
        await image_size(data)
    with pytest.raises(BadImage, match="too large: 10000×10000"):
        await split_grid(_bomb())
    with pytest.raises(BadImage, match="too large: 320×180"):
        await split_grid(_quadrants(320, 180), max_pixels=320 * 180 - 1)


class GiantGridProxy(MjProxyFake):
    """The open-source midjourney-proxy (a grid, no separate images: the bot splits it), whose grids
    are 30000×30000 PNGs."""

    async def _cdn(self, request: web.Request) -> web.Response:
        if request.match_info["name"].startswith("grid"):
            return web.Response(body=UNUSABLE["30000² grid"][0], content_type="image/png")
        return await super()._cdn(request)


async def test_the_cli_reports_a_giant_grid_in_one_line(tmp_path: Path) -> None:
    async with GiantGridProxy(opensource=True) as fake:
        entry = mj_proxy_config(fake.base_url).model_dump(mode="json", exclude={"api_key"})
        entry |= {"api_key": "test-secret", "poll_interval": 0.05}
        document = {"database": str(tmp_path / "bot.sqlite3"), "default_provider": entry["name"],
                    "providers": [entry], "media": {"allow_private_addresses": True},
                    "polling": {"idle_interval": 0.05}}  # fmt: skip
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(document), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if k != "IMAGINE_BOT_CONFIG"}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "--config", str(config), "imagine", "a lighthouse", "--quiet",
            "--out", str(tmp_path / "out"), cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    stderr = err.decode()
    assert process.returncode == ExitCode.REFUSED, (out.decode(), stderr)
    assert "succeeded on mjproxy" in out.decode()
    assert stderr.strip().splitlines() == [  # one line, no traceback
        "error: The image is too large: 30000×30000 pixels; the limit is 50,000,000 pixels "
        "(about 50 megapixels)."
    ]
