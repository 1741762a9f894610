"""Secrets never reach the logs: a whole `imagine-bot run` at DEBUG, and the filter on its own."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import signal
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import aiohttp
import pytest
import yaml
from aiohttp import web
from telegram import Bot

from bot.access import Caller
from bot.app import build_app
from bot.config import parse_config
from bot.domain import Owner
from bot.logs import REDACTED, configure_logging, secrets_of
from tests.core.conftest import png
from tests.fakes._server import FakeServer
from tests.fakes.midjourney_api import MidjourneyApiFake
from tests.fakes.telegram_api import FakeUser, TelegramFake

with warnings.catch_warnings():  # discord.player imports the deprecated stdlib `audioop`
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord
    import discord.http
    from discord.webhook.async_ import async_context

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "987654321:AAHsecretTelegramTokenValue_0123456"
API_KEY = "mjk-live-7f3a9c2e5b1d4f6a8c0e"
HOOK_SECRET = "whsec-9d8c7b6a5f4e"
ANN = FakeUser(42, "Ann", "ann")


def _config(fmt: str = "plain") -> dict[str, object]:
    return {
        "providers": [{"name": "mj", "type": "mj_rest", "base_url": "http://127.0.0.1:1", "api_key": API_KEY,
                       "webhook_secret": HOOK_SECRET}],
        "default_provider": "mj",
        "telegram": {"token": TOKEN},
        "logging": {"format": fmt, "level": "DEBUG"},
    }  # fmt: skip


def test_every_secret_of_the_config_is_found() -> None:
    found = set(secrets_of(parse_config(_config(), {})))
    assert {TOKEN, API_KEY, HOOK_SECRET} <= found


@pytest.mark.parametrize("fmt", ["plain", "json"])
def test_messages_arguments_and_tracebacks_are_redacted(fmt: str, root_logging: None) -> None:
    out = io.StringIO()
    configure_logging(parse_config(_config(fmt), {}), out)
    log = logging.getLogger("some.library")
    log.debug("POST https://api.telegram.org/bot%s/getMe", TOKEN)
    log.info(f"header API-KEY: {API_KEY}")
    try:
        raise RuntimeError(f"signature {HOOK_SECRET} did not match")
    except RuntimeError:
        log.exception("callback failed for key %r", API_KEY)
    text = out.getvalue()
    assert TOKEN not in text and API_KEY not in text and HOOK_SECRET not in text
    assert text.count(REDACTED) == 4
    if fmt == "json":
        entries = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        assert [e["level"] for e in entries] == ["DEBUG", "INFO", "ERROR"]
        assert "RuntimeError: signature [REDACTED] did not match" in entries[2]["exc"]


async def test_a_full_run_at_debug_logs_no_secret(tmp_path: Path) -> None:
    mj_fake = MidjourneyApiFake(api_key=API_KEY, polls_to_finish=1)
    async with TelegramFake(token=TOKEN) as telegram, mj_fake as mj:
        telegram.open_chat(ANN.id, "private", user=ANN)
        config = {
            "database": str(tmp_path / "bot.sqlite3"), "default_provider": "mj", "log_level": "DEBUG",
            "providers": [{"name": "mj", "type": "midjourney_api", "base_url": mj.base_url,
                           "api_key": "${TEST_MJ_KEY}", "poll_interval": 0.05}],
            "telegram": {"token": "${TEST_TG_TOKEN}", "base_url": f"{telegram.base_url}/bot",
                         "base_file_url": f"{telegram.base_url}/file/bot", "poll_timeout": 1.0},
            "media": {"allow_private_addresses": True},
            "polling": {"idle_interval": 0.05},
            "logging": {"format": "json"},
        }  # fmt: skip
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        logged = tmp_path / "output.log"  # a file, not a pipe: DEBUG output would fill a pipe's buffer
        with logged.open("wb") as sink:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "--config", str(path), "run", cwd=ROOT,
                env={"TEST_TG_TOKEN": TOKEN, "TEST_MJ_KEY": API_KEY, "PATH": "/usr/bin:/bin"},
                stdout=sink, stderr=sink)
        try:
            await telegram.wait_until(lambda: telegram.calls("getUpdates"), within=20)
            telegram.send_text(ANN.id, ANN, "/imagine a lighthouse at dusk")
            await telegram.wait_until(
                lambda: any(m.keyboard for m in telegram.bot_messages(ANN.id)), within=20)
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(15):
                await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    output = logged.read_text(encoding="utf-8", errors="replace")
    assert process.returncode == 0, output[-2000:]
    assert mj.submits(), "the job went through the keyed provider"
    assert '"level": "DEBUG"' in output  # it really logged at DEBUG ...
    assert REDACTED in output  # ... including lines that carried the token (Bot API URLs)
    for secret in (TOKEN, TOKEN.split(":")[1], API_KEY):
        assert secret not in output


# -- every encoding of every secret, and the tokens no config holds --------------------------------

ODD_KEY = "k/9+Zq=Y:w pü~42"  # a key with characters that each encoding writes differently
INTERACTION_TOKEN = "aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDpzZWNyZXRUb2tlbg"  # the shape of Discord's tokens
LEVELS = [logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL]


def _odd_config(fmt: str = "plain") -> dict[str, object]:
    return {
        "providers": [{"name": "mj", "type": "mj_rest", "base_url": "http://127.0.0.1:1",
                       "api_key": ODD_KEY}],
        "default_provider": "mj",
        "telegram": {"token": TOKEN},
        "logging": {"format": fmt, "level": "DEBUG"},
    }  # fmt: skip


def _forms(secret: str) -> dict[str, str]:
    """`secret` as logged text may carry it."""
    quoted = quote(secret, safe="")
    return {
        "plain": secret,
        "percent-encoded": quoted,
        "lower-case hex": quoted.replace("%3A", "%3a").replace("%2F", "%2f").replace("%C3%BC", "%c3%bc"),
        "encoded twice": quote(quoted, safe=""),
        "form-encoded": quote_plus(secret),
        "JSON-escaped": json.dumps(secret)[1:-1],
        "base64": base64.b64encode(secret.encode()).decode().rstrip("="),
        "url-safe base64": base64.urlsafe_b64encode(secret.encode()).decode().rstrip("="),
    }


def _leaks() -> Iterator[str]:
    """Every form of every secret, and the parts of them that alone would be enough."""
    for secret in (TOKEN, ODD_KEY):
        yield from _forms(secret).values()
    yield TOKEN.split(":")[1]
    yield INTERACTION_TOKEN


def _lines() -> list[str]:
    """What httpx, PTB, discord.py and its gateway write at DEBUG, carrying secrets in their forms."""
    lines = [f"GET http://127.0.0.1:8081/file/bot{form}/photos/file_1.jpg ({name})"
             for secret in (TOKEN, ODD_KEY) for name, form in _forms(secret).items()]  # fmt: skip
    api = "https://discord.com/api/v10"
    return [
        *lines,
        f"Webhook ID 99 with POST {api}/interactions/99/{INTERACTION_TOKEN}/callback has returned "
        "status code 204",
        f"PATCH {api}/webhooks/1234/{INTERACTION_TOKEN}/messages/@original with {{}} has returned 200",
        f"GET {api.replace('/', '%2F')}%2Finteractions%2F99%2F{INTERACTION_TOKEN}%2Fcallback",
        "For Shard ID None: WebSocket Event: {'t': 'INTERACTION_CREATE', 'd': "
        f"{{'id': '99', 'token': '{INTERACTION_TOKEN}', 'type': 2}}}}",
        f'received {{"id": "99", "token": "{INTERACTION_TOKEN}"}}',
        f"GET https://cdn.example/img.png?size=2&token={INTERACTION_TOKEN}&x=1",
    ]


def _assert_clean(text: str) -> None:
    for leak in _leaks():
        assert leak not in text, f"{leak!r} reached the log"


@pytest.mark.parametrize("fmt", ["plain", "json"])
@pytest.mark.parametrize("level", LEVELS, ids=logging.getLevelName)
def test_every_encoding_and_every_token_is_masked_at_every_level(
    fmt: str, level: int, root_logging: None
) -> None:
    out = io.StringIO()
    configure_logging(parse_config(_odd_config(fmt), {}), out)
    log = logging.getLogger("some.library")
    lines = _lines()
    for line in lines:
        log.log(level, "%s", line)
    try:
        raise RuntimeError("request failed: " + " | ".join(lines))
    except RuntimeError:
        log.log(level, "while sending %s", lines[-1], exc_info=True)
    text = out.getvalue()
    entries = [json.loads(line) for line in text.splitlines()] if fmt == "json" else []
    shown = "\n".join(e["message"] + "\n" + e.get("exc", "") for e in entries) if entries else text
    _assert_clean(text)
    _assert_clean(shown)  # also once JSON's escaping is undone
    assert shown.count(REDACTED) >= 2 * len(lines)  # each line once, and again in the exception
    assert "/file/bot[REDACTED]/photos/file_1.jpg (percent-encoded)" in shown  # the rest stays readable
    assert "/interactions/99/[REDACTED]/callback has returned status code 204" in shown
    assert "/webhooks/1234/[REDACTED]/messages/@original" in shown
    assert "'token': '[REDACTED]'" in shown and "&token=[REDACTED]&x=1" in shown


async def test_a_real_telegram_file_download_at_debug(root_logging: None) -> None:
    """httpx logs the file URL with the token percent-encoded (`bot123%3AAB...`)."""
    out = io.StringIO()
    configure_logging(parse_config(_odd_config(), {}), out)
    async with TelegramFake(token=TOKEN) as telegram:
        photo = telegram.send_photo(ANN.id, ANN, png(32, 32))
        bot = Bot(TOKEN, base_url=f"{telegram.base_url}/bot", base_file_url=f"{telegram.base_url}/file/bot")
        async with bot:
            file = await bot.get_file(photo.photo[-1]["file_id"])
            assert await file.download_as_bytearray() == telegram.file_bytes(photo.photo[-1]["file_id"])
    text = out.getvalue()
    _assert_clean(text)
    assert f"/file/bot{REDACTED}/photos/" in text  # the download really was logged


class _Gone(FakeServer):
    """Discord answering every request with 404 Unknown interaction."""

    def routes(self) -> list[web.RouteDef]:
        return [web.route("*", "/{tail:.*}", self._any)]

    async def _any(self, request: web.Request) -> web.Response:
        body = json.dumps({"message": "Unknown interaction", "code": 10062})
        return web.Response(text=body, status=404, content_type="application/json")


async def test_real_discord_interaction_requests_at_debug(
    root_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """discord.py logs each interaction callback and interaction-webhook edit with its token in the path."""
    out = io.StringIO()
    configure_logging(parse_config(_odd_config(), {}), out)
    adapter = async_context.get()
    async with _Gone() as gone, aiohttp.ClientSession() as session:
        monkeypatch.setattr(discord.http.Route, "BASE", f"{gone.base_url}/api/v10")
        defer = discord.http.MultipartParameters(payload={"type": 5}, multipart=None, files=None)
        with pytest.raises(discord.NotFound):
            await adapter.create_interaction_response(99, INTERACTION_TOKEN, session=session, params=defer)
        with pytest.raises(discord.NotFound):
            await adapter.edit_original_interaction_response(
                1234, INTERACTION_TOKEN, session=session, payload={"content": "done"})  # fmt: skip
    text = out.getvalue()
    _assert_clean(text)
    assert f"/interactions/99/{REDACTED}/callback has returned status code 404" in text
    assert f"/webhooks/1234/{REDACTED}/messages/@original has returned status code 404" in text


async def test_a_provider_echoing_the_key_in_its_refusal_is_logged_redacted(
    tmp_path: Path, root_logging: None
) -> None:
    """The job runner logs a refused submit with the provider's own words (for the operators); a
    provider that echoes the API key in them has it redacted like every other secret, and the member
    reads a message that names no key."""
    async with MidjourneyApiFake(api_key=API_KEY) as fake:
        config = parse_config({
            "database": str(tmp_path / "bot.sqlite3"), "default_provider": "mj",
            "providers": [{"name": "mj", "type": "midjourney_api", "base_url": fake.base_url,
                           "api_key": API_KEY}]}, {})  # fmt: skip
        out = io.StringIO()
        configure_logging(config, out)
        fake.inject("auth_echo")
        async with build_app(config, serve_http=False) as app:
            job = await app.service.imagine(Caller(Owner(platform="cli", user_id="u", name="U")), "a harbour")
            await app.poller.tick()
            failed = await app.service.get(job.id)
    text = out.getvalue()
    said = f"ProviderAuthError from mj (HTTP 401: Invalid API-KEY {REDACTED})"
    assert f"job {job.id} failed at submit on mj: {said}" in text
    assert API_KEY not in text and failed.error and API_KEY not in failed.error
