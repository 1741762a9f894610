"""The README's production steps, run: `cp config.production.yaml config.yaml`, the secrets in the
environment, `imagine-bot run` as docker-compose.yml starts it. Against the project's fakes (the
config's endpoints pointed at them, nothing else changed), /healthz answers where compose's healthcheck
looks, and a member's /imagine on Telegram ends as a grid from the paid provider, not the simulator."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import yaml

from bot.config import parse_config
from tests.bot_process import ROOT, running_bot, stop
from tests.fakes.midjourney_api import MidjourneyApiFake
from tests.fakes.telegram_api import TelegramFake
from tests.net import free_port
from tests.telegram_frontend.conftest import ANN, BOT

PRODUCTION = ROOT / "config.production.yaml"
COMPOSE = ROOT / "docker-compose.yml"
ENV = {"TELEGRAM_TOKEN": "123456:" + "A" * 35, "DISCORD_TOKEN": "", "MJAPI_KEY": "mj-production-key-1a2b"}


def healthcheck() -> tuple[int, str]:
    """The port and path docker-compose.yml's healthcheck asks."""
    service = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]["imagine-bot"]
    url = re.search(r"http://[^'\"]+", " ".join(service["healthcheck"]["test"]))
    assert url is not None, "the healthcheck asks no URL"
    parts = urlsplit(url[0])
    assert parts.port is not None
    return parts.port, parts.path


def test_the_production_example_serves_health_where_compose_looks_and_no_simulator() -> None:
    port, path = healthcheck()
    assert path == "/healthz"
    service = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]["imagine-bot"]
    assert "./config.yaml:/config/config.yaml:ro" in service["volumes"]
    assert "cp config.production.yaml config.yaml" in COMPOSE.read_text(encoding="utf-8")
    config = parse_config(yaml.safe_load(PRODUCTION.read_text(encoding="utf-8")), ENV, str(PRODUCTION))
    listens = (config.metrics.listen, config.webhooks and config.webhooks.listen)
    served = [listen for listen in listens if listen]
    assert [int(listen.rsplit(":", 1)[1]) for listen in served] == [port]
    assert config.provider(config.default_provider).type != "local"
    assert all(p.type != "local" for p in config.providers)
    assert config.logging.format == "json"


def against_fakes(tmp_path: Path, telegram: TelegramFake, mj: MidjourneyApiFake, port: int) -> Path:
    """config.production.yaml as an admin copies it, with only what points outside this machine (the
    platforms' and the provider's endpoints, /data, the port) pointed at the fakes and tmp_path."""
    data: dict[str, Any] = yaml.safe_load(PRODUCTION.read_text(encoding="utf-8"))
    data["database"] = str(tmp_path / "imagine-bot.sqlite3")
    data["media"]["cache_dir"] = str(tmp_path / "media")
    data["media"]["allow_private_addresses"] = True  # the fake provider's images are on 127.0.0.1
    data["providers"][0]["base_url"] = mj.base_url
    data["providers"][0]["poll_interval"] = 0.1
    data["telegram"].update(base_url=f"{telegram.base_url}/bot", poll_timeout=1,
                            base_file_url=f"{telegram.base_url}/file/bot")  # fmt: skip
    data["metrics"]["listen"] = f"127.0.0.1:{port}"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


async def test_the_production_steps_run_against_the_fakes(tmp_path: Path) -> None:
    port = free_port()  # compose's 8080 may be taken on a test machine; the test above pins it to 8080
    async with TelegramFake(bot_username=BOT) as telegram, MidjourneyApiFake(
            api_key=ENV["MJAPI_KEY"], polls_to_finish=1) as mj:  # fmt: skip
        path = against_fakes(tmp_path, telegram, mj, port)
        check = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "check-config", str(path), cwd=ROOT,
            env={**ENV, "TELEGRAM_TOKEN": telegram.token, "PATH": "/usr/bin:/bin"},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)  # fmt: skip
        checked, _ = await asyncio.wait_for(check.communicate(), 60)
        assert check.returncode == 0, checked.decode()
        assert "local" not in checked.decode()  # no simulator warning: the default is the paid provider
        async with running_bot(path, TELEGRAM_TOKEN=telegram.token, DISCORD_TOKEN="",
                               MJAPI_KEY=ENV["MJAPI_KEY"]) as process:  # fmt: skip
            async with aiohttp.ClientSession() as http:
                for _ in range(300):
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/healthz") as answer:
                            if answer.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError("/healthz never answered 200")
            prompt = "/imagine a lighthouse in production"
            command = telegram.send_text(ANN.id, ANN, prompt, chat_type="private")
            reply = await telegram.wait_until(lambda: next((
                m for m in telegram.bot_messages(ANN.id)
                if m.reply_to_message_id == command.message_id and m.keyboard and m.photo), None), within=60)
            log = await stop(process)
    assert any(b == "U1" for row in reply.keyboard for b, _ in row)
    assert [job.body.get("prompt") for job in mj.jobs.values()] == ["a lighthouse in production"]
    assert all(line.startswith("{") for line in log.splitlines() if line.strip()), log  # JSON logs
    assert telegram.token not in log and ENV["MJAPI_KEY"] not in log
