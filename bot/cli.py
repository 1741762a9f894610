"""`imagine-bot`: run jobs from a terminal, inspect them, check the config, and start the bot."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TextIO

from bot import faults, frontends
from bot.admin import add_cli as add_admin_cli
from bot.admin import parse_period
from bot.admin import run_cli as run_admin_cli
from bot.app import App, build_app, running
from bot.config import AppConfig, database_location, load_config
from bot.domain import CLI_PLATFORM, Job, JobState, Owner, action_name, parse_action_name
from bot.errors import BadImage, ConfigError, UserError
from bot.logs import configure_logging
from bot.media import sniff
from bot.store import DatabaseError, JobStore
from bot.store.copy import copy_store
from providers.base import ImageInput
from providers.errors import ProviderError

_USER = os.environ.get("USER", "admin")
WATCH_REREAD = 1.0  # seconds between looks at the store while watching a job
CLI_OWNER = Owner(platform=CLI_PLATFORM, user_id=_USER, name=_USER)
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp",
               "video/mp4": "mp4", "video/webm": "webm"}  # fmt: skip


class Progress:
    """Prints a job's progress: a redrawn bar on a terminal, one line per change otherwise."""

    def __init__(self, job_id: str, out: TextIO) -> None:
        self.job_id = job_id
        self.done = asyncio.Event()
        self.job: Job | None = None
        self._out = out
        self._tty = out.isatty()
        self._last = ""
        self.reader_gone = False  # stdout was closed (`| head`): stop watching, leave the job be

    async def job_changed(self, job: Job) -> None:
        if job.id != self.job_id or self.done.is_set():
            return
        self.job = job
        filled = job.progress // 5
        line = f"[{'#' * filled}{'-' * (20 - filled)}] {job.progress:3d}% {job.state.value} ({job.provider})"
        try:
            if line != self._last:
                self._out.write(("\r" + line) if self._tty else line + "\n")
                self._out.flush()
                self._last = line
            if job.terminal and self._tty:
                self._out.write("\n")
        except BrokenPipeError:  # raised here it would only reach the listener fan-out's log
            self.reader_gone = True
        if job.terminal or self.reader_gone:
            self.done.set()


def _find_config(explicit: str | None) -> Path | None:
    if explicit:
        return Path(explicit)
    env = os.environ.get("IMAGINE_BOT_CONFIG")
    if env:
        return Path(env)
    default = Path("config.yaml")
    return default if default.exists() else None


async def _watch(app: App, job: Job, out_dir: Path) -> int:
    """Show progress until the job ends, then write its files. Returns the exit code."""
    progress = Progress(job.id, sys.stdout)
    app.listeners.add(progress)
    try:
        current = await app.service.get(job.id)
        await progress.job_changed(current)
        position = await app.service.queue_position(current)
        if position > 1:
            print(f"queued at position {position}")
        while not progress.done.is_set():  # another process (`run`, a second CLI) may be the one
            with contextlib.suppress(TimeoutError):  # that polls it: look at the store now and then
                await asyncio.wait_for(progress.done.wait(), WATCH_REREAD)
            if not progress.done.is_set():
                await progress.job_changed(await app.service.get(job.id))
    finally:
        app.listeners.remove(progress)
    if progress.reader_gone:
        raise BrokenPipeError
    assert progress.job is not None
    return await _report(app, progress.job, out_dir)


async def _report(app: App, job: Job, out_dir: Path) -> int:
    print(f"job {job.id}: {job.state.value} on {job.provider}")
    if job.state is not JobState.SUCCEEDED:
        print(f"error: {job.error}", file=sys.stderr)
        return 1
    files = await app.service.media.files(job)
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    named: list[tuple[str, bytes]] = []
    if files.grid:
        named.append(("grid", files.grid))
    named += [(str(i), data) for i, data in enumerate(files.images, start=1)]
    named += [(f"video{i}", data) for i, data in enumerate(files.videos, start=1)]
    for name, data in named:
        path = out_dir / f"{job.id}-{name}.{_EXTENSIONS.get(sniff(data) or '', 'bin')}"
        path.write_bytes(data)
        print(f"wrote {path}")
    for i, prompt in enumerate(job.result.prompts if job.result else [], start=1):
        print(f"P{i}: {prompt}")
    offers = [action_name(a.value, i) for a, i in job.offers()]
    if job.result and job.result.prompts:
        offers += [f"P{i}" for i in range(1, len(job.result.prompts) + 1)]
    if offers:
        print(f"actions: imagine-bot act {job.id} {{{','.join(offers)}}}")
    return 0


def _read_image(path: str) -> ImageInput:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BadImage(f"Cannot read {path}: {exc.strerror}.") from exc
    return ImageInput(data=data, filename=Path(path).name)


async def _unwrapped(command: Coroutine[Any, Any, int]) -> int:
    """Run `command`, re-raising a lone error that the poller's TaskGroup wrapped in a group, so a
    bad prompt or an unknown job is reported as itself instead of as a traceback."""
    try:
        return await command
    except BaseExceptionGroup as group:
        error: BaseException = group
        while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
            error = error.exceptions[0]
        if isinstance(error, UserError | ProviderError | DatabaseError | BrokenPipeError):
            raise error from None
        raise


async def _command(args: argparse.Namespace, config: AppConfig) -> int:
    out_dir = Path(args.out) if getattr(args, "out", None) else Path("out")
    async with build_app(config, serve_http=False) as app, running(app):
        service = app.service
        if args.command == "imagine":
            job = await service.imagine(CLI_OWNER, args.prompt, provider=args.provider)
        elif args.command == "describe":
            job = await service.describe(CLI_OWNER, _read_image(args.file), provider=args.provider)
        elif args.command == "blend":
            images = [_read_image(p) for p in args.files]
            job = await service.blend(CLI_OWNER, images, dimensions=args.dimensions, provider=args.provider)
        elif args.command == "act":
            parsed = parse_action_name(args.action)
            if parsed is None:
                raise UserError(f"Unknown action '{args.action}'. Use U1-U4, V1-V4, reroll, vary-subtle, "
                                "vary-strong, upscale-subtle, upscale-creative, zoom-2x, zoom-1.5x, "
                                "pan-left/right/up/down, animate, extend or P1-P4.")
            job, created = await service.act(CLI_OWNER, args.job, *parsed)
            if not created:
                print(f"{args.action} was already requested: job {job.id}")
        elif args.command == "wait":
            job = await service.get(args.job)
        elif args.command == "cancel":
            job = await service.cancel(CLI_OWNER, args.job, admin=True)  # the CLI is an operator
            print(f"job {job.id} cancelled")
            return 0
        else:
            return await _jobs(app, args.limit)
        print(f"job {job.id} ({job.kind.value}) on {job.provider}")
        return await _watch(app, job, out_dir)


async def _admin(args: argparse.Namespace, config: AppConfig) -> int:
    """Admin commands work on the store (a running bot picks up bans, limits and pauses from it)."""
    async with build_app(config, serve_http=False) as app:
        return await run_admin_cli(app.admin, args, CLI_OWNER)


async def _db_copy(args: argparse.Namespace, config: AppConfig) -> int:
    """Every table of the store at SRC copied to DST (see bot/store/copy.py), the counts checked."""
    print(f"copying {database_location(args.source)} to {database_location(args.target)}")
    copied = await copy_store(args.source, args.target)
    print("\n".join(copied.lines()))
    if copied.short:
        tables = ", ".join(t.table for t in copied.short)
        print(f"error: fewer rows in the target than in the source: {tables} (a row whose unique value "
              "the target has under another key is not copied)", file=sys.stderr)
        return 1
    return 0


async def _db_prune(args: argparse.Namespace, config: AppConfig) -> int:
    """The configured store pruned now, of jobs older than --older-than or retention.keep_days."""
    if args.older_than is not None:
        age = parse_period(args.older_than)
    elif config.retention.keep_days is not None:
        age = config.retention.keep_days * 86400
    else:
        raise UserError("retention.keep_days is null (keep everything): nothing to prune; "
                        "give --older-than (e.g. 30d) to prune anyway.")
    store = await JobStore.open(config.database)
    try:
        pruned = await store.prune(time.time() - age, dry_run=args.dry_run)
    finally:
        await store.close()
    print(f"{database_location(config.database)}: {pruned.line()}")
    return 0


async def _workers(args: argparse.Namespace, config: AppConfig) -> int:
    """The workers that share the store: live (a heartbeat within workers.lease) or gone."""
    store = await JobStore.open(config.database)
    try:
        now = time.time()
        workers = await store.workers.all(now)
    finally:
        await store.close()
    print(f"{'WORKER':<24}{'STATE':<7}{'UP':>9}{'SEEN':>8}{'LEASES':>8}  DETAILS")
    for w in workers:
        state = "live" if now - w.seen_at <= config.workers.lease else "gone"
        details = " ".join(f"{k}={v}" for k, v in sorted(w.info.items())) or "-"
        print(f"{w.id:<24}{state:<7}{_age(now - w.started_at):>9}{_age(now - w.seen_at):>8}{w.leases:>8}  "
              f"{details}")
    if not workers:
        print("(no worker has run on this database)")
    return 0


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


async def _jobs(app: App, limit: int) -> int:
    jobs = await app.service.recent(limit=limit)
    print(f"{'ID':<11}{'KIND':<17}{'STATE':<11}{'PROG':>5}  {'PROVIDER':<12}{'PARENT':<11}PROMPT")
    for job in jobs:
        prompt = job.request.prompt.full() if job.request.prompt else ""
        print(f"{job.id:<11}{job.kind.value:<17}{job.state.value:<11}{job.progress:>4}%  "
              f"{job.provider:<12}{job.parent_id or '-':<11}{prompt[:50]}")
    return 0


EXIT_DATABASE = 3  # the database can't be used (see README, "Exit codes")
_CONFIG_HELP = "config file (default: $IMAGINE_BOT_CONFIG or ./config.yaml)"


def _config_everywhere(parser: argparse.ArgumentParser) -> None:
    """Accept `--config PATH` after every subcommand too (`imagine-bot run --config PATH`, as people type
    it); the later one wins. SUPPRESS as the default: a subcommand given no --config keeps the earlier one."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                child.add_argument("--config", default=argparse.SUPPRESS, help=_CONFIG_HELP)
                _config_everywhere(child)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imagine-bot", description=__doc__)
    parser.add_argument("--config", help=_CONFIG_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("imagine", help="generate a grid from a prompt")
    p.add_argument("prompt")
    p.add_argument("--provider")
    p.add_argument("--out", help="directory for the images (default ./out)")
    p = sub.add_parser("act", help="press a button of a finished job: U1-U4, V1-V4, reroll, zoom-2x ...")
    p.add_argument("job")
    p.add_argument("action")
    p.add_argument("--out")
    p = sub.add_parser("describe", help="four prompts for an image file")
    p.add_argument("file")
    p.add_argument("--provider")
    p.add_argument("--out")
    p = sub.add_parser("blend", help="blend 2-5 image files")
    p.add_argument("files", nargs="+")
    p.add_argument("--dimensions", choices=("portrait", "square", "landscape"))
    p.add_argument("--provider")
    p.add_argument("--out")
    p = sub.add_parser("wait", help="watch a job until it ends and write its files")
    p.add_argument("job")
    p.add_argument("--out")
    p = sub.add_parser("cancel", help="cancel a queued or running job")
    p.add_argument("job")
    p = sub.add_parser("jobs", help="recent jobs as a table")
    p.add_argument("--limit", type=int, default=20)
    add_admin_cli(sub)
    p = sub.add_parser("db", help="move the store to another database; prune old jobs now")
    db = p.add_subparsers(dest="db_command", required=True)
    p = db.add_parser("copy", help="copy every table of a store to another database (a path or a URL)")
    p.add_argument("source", metavar="SRC")
    p.add_argument("target", metavar="DST")
    p = db.add_parser("prune", help="forget finished jobs older than retention.keep_days (or --older-than)")
    p.add_argument("--dry-run", action="store_true", help="only count what would go")
    p.add_argument("--older-than", metavar="PERIOD", help="e.g. 30d, 12h, 2w (default: retention.keep_days)")
    sub.add_parser("run", help="start the configured chat frontends")
    sub.add_parser("workers", help="the workers sharing the database: live or gone, their leases")
    p = sub.add_parser("check-config", help="validate a config file and list every problem")
    p.add_argument("path", nargs="?")
    _config_everywhere(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    path = _find_config(args.path if args.command == "check-config" and args.path else args.config)
    try:
        config = load_config(path, os.environ)
    except ConfigError as exc:
        print(f"{exc.source}: invalid configuration", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    configure_logging(config, quiet=args.command != "run")
    faults.arm(os.environ.get("IMAGINE_BOT_FAULTS", ""))  # crash tests only: see bot/faults.py
    if args.command == "check-config":
        print(f"{path or 'defaults'}: OK ({len(config.providers)} provider(s): "
              f"{', '.join(p.name for p in config.providers)})")
        return 0
    try:
        if args.command == "run":
            return asyncio.run(_unwrapped(frontends.run(config)))
        if args.command == "admin":
            return asyncio.run(_unwrapped(_admin(args, config)))
        if args.command == "workers":
            return asyncio.run(_unwrapped(_workers(args, config)))
        if args.command == "db":
            handler = _db_copy if args.db_command == "copy" else _db_prune
            return asyncio.run(_unwrapped(handler(args, config)))
        return asyncio.run(_unwrapped(_command(args, config)))
    except (UserError, ProviderError) as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except DatabaseError as exc:  # unreachable, refused, or newer than this code: nothing ran
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_DATABASE
    except BrokenPipeError:  # the reader went away (`imagine-bot jobs | head`): nothing left to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted: the job stays in the store; `imagine-bot jobs` and `imagine-bot wait JOB` "
              "pick it up.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
