"""config.example.yaml stays a valid, complete config: as shipped, and with every commented-out block on."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.config import parse_config
from providers import PROVIDERS
from providers.base import ProviderConfig

EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.yaml"
ENV = {"MJAPI_KEY": "k1", "MIDAPI_KEY": "k2", "OHMYGPT_KEY": "k3", "MJREST_KEY": "k4", "MJPROXY_SECRET": "k5"}
_COMMENTED_KEY = re.compile(r"^(\s*)# ( *)(- name:|[a-z_]+:)")


def _uncommented(text: str) -> str:
    """The example with every commented-out provider entry and section switched on."""
    out = []
    for line in text.splitlines():
        match = _COMMENTED_KEY.match(line)
        out.append(f"{match[1]}{match[2]}{line[match.end(2):]}" if match else line)
    return "\n".join(out)


def test_the_example_as_shipped_is_valid() -> None:
    config = parse_config(yaml.safe_load(EXAMPLE.read_text()), ENV, str(EXAMPLE))
    assert [p.name for p in config.providers] == ["local"]
    assert config.webhooks is None


def test_every_commented_block_is_valid_and_every_provider_type_has_one() -> None:
    data = yaml.safe_load(_uncommented(EXAMPLE.read_text()))
    config = parse_config(data, ENV, str(EXAMPLE))
    assert {p.type for p in config.providers} == set(PROVIDERS)
    assert config.webhooks is not None and config.webhooks.public_url == "https://bot.example.com"
    mj = config.provider("mj")
    assert mj.api_key is not None and mj.api_key.get_secret_value() == "k1"


def test_the_example_names_every_key_of_every_provider_type() -> None:
    data = yaml.safe_load(_uncommented(EXAMPLE.read_text()))
    common = set(ProviderConfig.model_fields) - {"base_url", "api_key"}
    for entry in data["providers"]:
        specific = set(PROVIDERS[entry["type"]].config_class.model_fields) - common
        missing = specific - set(entry) - {"type", "base_url", "api_key"}
        assert not missing, f"config.example.yaml: providers entry {entry['name']!r} lacks {sorted(missing)}"


def test_the_scale_setup_is_consistent() -> None:
    """docker-compose.scale.yml: every worker runs one shard of deploy/config.scale.yaml's count, each
    its own host name (its workers.id), and nginx forwards webhooks to every one of them."""
    root = EXAMPLE.parent
    compose = yaml.safe_load((root / "docker-compose.scale.yml").read_text())
    workers = {name: s for name, s in compose["services"].items() if name.startswith("worker")}
    shards = sorted(int(s["environment"]["DISCORD_SHARD"]) for s in workers.values())
    env = {"PG_PASSWORD": "pw", "TELEGRAM_TOKEN": "123:" + "a" * 35, "DISCORD_TOKEN": "MTIz.GabcDe.xyz_-9",
           "MJAPI_KEY": "k"}  # tokens of the platforms' shapes (check-config refuses any other)
    for shard in shards:
        config = parse_config(yaml.safe_load((root / "deploy" / "config.scale.yaml").read_text()),
                              {**env, "DISCORD_SHARD": str(shard)}, "config.scale.yaml")
        assert config.discord is not None and config.discord.shard_ids == [shard]
        assert config.telegram is not None and config.telegram.mode == "webhook"
        assert config.webhooks is not None and config.webhooks.listen.endswith(":8080")
    assert shards == list(range(int(config.discord.shard_count or 0)))
    assert len({s["hostname"] for s in workers.values()}) == len(workers)
    nginx = (root / "deploy" / "nginx.conf").read_text()
    assert all(f"server {name}:8080" in nginx for name in workers)
