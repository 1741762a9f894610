"""Where the config file is found, and what the relative paths in it mean: next to the config file,
or without one in the platform's data directory (XDG on Linux)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from bot.config import AppConfig

APP_NAME = "imagine-bot"


def find_config(explicit: str | None, env: Mapping[str, str]) -> Path | None:
    """The config file to use: `explicit` (--config), else $IMAGINE_BOT_CONFIG, else ./config.yaml if
    there is one; None = no file (the defaults)."""
    if explicit:
        return Path(explicit)
    if env.get("IMAGINE_BOT_CONFIG"):
        return Path(env["IMAGINE_BOT_CONFIG"])
    default = Path("config.yaml")
    return default if default.exists() else None


def default_data_dir(env: Mapping[str, str]) -> Path:
    """Where the bot keeps its files when there is no config file: the platform's per-user data directory
    ($XDG_DATA_HOME/imagine-bot, by default ~/.local/share/imagine-bot, on Linux)."""
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    if sys.platform == "win32":
        base = Path(env["LOCALAPPDATA"]) if env.get("LOCALAPPDATA") else home / "AppData" / "Local"
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:  # XDG: a relative $XDG_DATA_HOME is invalid and ignored
        xdg = Path(env.get("XDG_DATA_HOME", ""))
        base = xdg if xdg.is_absolute() else home / ".local" / "share"
    return base / APP_NAME


def config_base_dir(path: Path | None, env: Mapping[str, str]) -> Path:
    """The directory relative paths in the config resolve against: the config file's own (wherever the
    command runs from), or without a config file `default_data_dir`."""
    return path.absolute().parent if path is not None else default_data_dir(env)


def resolve_paths(config: AppConfig, base: Path) -> AppConfig:
    """`config` with its relative file paths (a SQLite `database`, `media.cache_dir`,
    `moderation.banned_words_file`; `~` expanded) made absolute against `base`."""

    def resolved(path: Path) -> Path:
        path = path.expanduser()
        return path if path.is_absolute() or str(path) == ":memory:" else base / path

    database = config.database if isinstance(config.database, str) else resolved(config.database)
    cache_dir = config.media.cache_dir
    if cache_dir is None and isinstance(database, str):  # a server: the cache is this machine's own
        cache_dir = Path(f"{APP_NAME}.media")
    words = config.moderation.banned_words_file
    media = config.media.model_copy(update={"cache_dir": cache_dir and resolved(cache_dir)})
    moderation = config.moderation.model_copy(update={"banned_words_file": words and resolved(words)})
    return config.model_copy(update={"database": database, "media": media, "moderation": moderation})
