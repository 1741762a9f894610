"""`imagine-bot imagine --provider NAME` as a subprocess against every adapter's running fake.

The fake runs in this test's event loop on 127.0.0.1; the CLI is a real separate process with a
config in tmp_path whose provider `base_url` points at the fake.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.providers.contract import AdapterCase
from tests.providers.test_contract import CASES

_CLI = Path(sys.executable).with_name("imagine-bot")
_ROOT = Path(__file__).resolve().parents[2]


def _provider_entry(case: AdapterCase, base_url: str) -> dict[str, Any]:
    config = case.make_config(base_url)
    entry: dict[str, Any] = config.model_dump(mode="json", exclude={"api_key"})
    assert config.api_key is not None
    entry |= {"api_key": config.api_key.get_secret_value(), "poll_interval": 0.05, "request_timeout": 5.0}
    return entry


def _write_config(tmp_path: Path, case: AdapterCase, base_url: str) -> Path:
    entry = _provider_entry(case, base_url)
    document = {
        "database": str(tmp_path / "bot.sqlite3"),
        "default_provider": entry["name"],
        "providers": [entry],
        "media": {"allow_private_addresses": True},
        "polling": {"idle_interval": 0.05},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


async def _run_cli(config: Path, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k != "IMAGINE_BOT_CONFIG"}
    process = await asyncio.create_subprocess_exec(
        str(_CLI), "--config", str(config), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.type)
async def test_cli_imagine_against_the_fake(case: AdapterCase, tmp_path: Path) -> None:
    async with case.make_fake() as fake:
        config = _write_config(tmp_path, case, fake.base_url)
        name = case.make_config(fake.base_url).name
        out_dir = tmp_path / "out"
        code, out, err = await _run_cli(
            config, "imagine", "a lighthouse at dusk --ar 16:9", "--provider", name, "--out", str(out_dir)
        )
    assert code == 0, f"stdout:\n{out}\nstderr:\n{err}"
    assert f"succeeded on {name}" in out
    written = sorted(out_dir.iterdir())
    assert written, out
    assert all(path.stat().st_size > 0 for path in written)
    assert any(path.suffix in (".png", ".jpg", ".webp") for path in written)
    # the fake really served the job: its requests include a submit from the CLI process
    assert any(method == "POST" for method, _ in fake.requests)


async def test_every_fake_serves_from_the_command_line() -> None:
    """`python -m tests.fakes.<name> --port 0` prints where it listens and answers there."""
    names = ["midjourney_api", "gpt_image", "midapi", "ohmygpt", "mj_rest", "mj_proxy"]
    pipe = asyncio.subprocess.PIPE
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", f"tests.fakes.{name}", "--port", "0", stdout=pipe, cwd=_ROOT
        )
        for name in names
    ]
    try:
        urls = []
        for process in processes:
            assert process.stdout is not None
            line = (await asyncio.wait_for(process.stdout.readline(), timeout=30)).decode()
            urls.append(line.rsplit(" ", 1)[-1].strip())
        async with httpx.AsyncClient() as client:
            answers = [await client.get(f"{url}/no-such-path") for url in urls]
        assert all(url.startswith("http://127.0.0.1:") for url in urls), urls
        assert [answer.status_code for answer in answers] == [404] * len(names)
    finally:
        for process in processes:
            process.terminate()
            await process.wait()
