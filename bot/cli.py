"""`imagine-bot`: run jobs from a terminal, inspect them, check the config, and start the bot.

Results go to stdout (text, or with --json one JSON object per job and line); progress and notes go
to stderr (a bar on a terminal, plain lines otherwise, nothing with --quiet); errors are one
`error: ...` line on stderr and a distinct exit code (bot/errors.py ExitCode, listed in --help).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections.abc import Coroutine, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bot import faults, frontends
from bot.access import Caller
from bot.admin import parse_period
from bot.admin import run_cli as run_admin_cli
from bot.app import App, build_app, running
from bot.cli_output import (
    Out,
    iso_time,
    job_record,
    kind_name,
    local_time,
    new_table,
    offers,
    print_table,
    report,
    to_stderr,
    watch,
)
from bot.cli_parser import ACTIONS_HELP, parser
from bot.config import AppConfig, database_location, load_config
from bot.config_check import check_config
from bot.config_paths import find_config
from bot.domain import CLI_PLATFORM, Job, JobState, Owner, action_name, parse_action_name
from bot.errors import BadImage, ConfigError, ExitCode, StartupError, UnsupportedAction, UserError
from bot.logs import configure_logging
from bot.presentation import batch_summary
from bot.store import DatabaseError, JobStore
from bot.store.copy import copy_store
from bot.web.cli import run_cli as run_web_cli
from providers.base import ImageInput
from providers.errors import ProviderError

log = logging.getLogger(__name__)

_USER = os.environ.get("USER", "admin")
WATCH_REREAD = 1.0  # seconds between looks at the store while watching a job
CLI_OWNER = Owner(platform=CLI_PLATFORM, user_id=_USER, name=_USER)
CLI_CALLER = Caller(CLI_OWNER, operator=True)  # whoever runs the CLI operates the bot
EXIT_DATABASE = ExitCode.DATABASE  # the name older tests and scripts import


# -- commands ----------------------------------------------------------------------------------------


def _read_image(path: str) -> ImageInput:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BadImage(f"Cannot read {path}: {exc.strerror}.") from exc
    return ImageInput(data=data, filename=Path(path).name)


_KNOWN = (StartupError, UserError, ProviderError, DatabaseError, ConfigError, BrokenPipeError)


async def _unwrapped(command: Coroutine[Any, Any, int]) -> int:
    """Run `command`, re-raising the error that a TaskGroup (the poller's, the frontends') wrapped in a
    group, so a bad prompt, an unknown job or a refused token is reported as itself, not as a traceback.
    A group of several known errors (both platforms refused their tokens) is reported by its first."""
    try:
        return await command
    except BaseExceptionGroup as group:
        leaves: list[BaseException] = []
        pending: list[BaseException] = [group]
        while pending:
            error = pending.pop(0)
            if isinstance(error, BaseExceptionGroup):
                pending[:0] = error.exceptions
            else:
                leaves.append(error)
        if leaves and all(isinstance(error, _KNOWN) for error in leaves):
            raise leaves[0] from None
        raise


async def _create_all(app: App, args: argparse.Namespace, out: Out) -> list[Job]:
    """The jobs the command asks for: an imagine's permutations and repeats (one job without), said on
    stderr when there are several; any other command's one job."""
    if args.command != "imagine":
        return [await _create(app, args, out)]
    jobs, _ = await app.service.imagine_many(CLI_CALLER, args.prompt, provider=args.provider)
    if len(jobs) > 1:
        out.note(batch_summary(jobs))
    return jobs


async def _create(app: App, args: argparse.Namespace, out: Out) -> Job:
    """The job the command asks for: a new one, or (`wait`, an action pressed before) a stored one."""
    service = app.service
    if args.command == "describe":
        return await service.describe(CLI_CALLER, _read_image(args.file), provider=args.provider)
    if args.command == "shorten":
        return await service.shorten(CLI_CALLER, args.prompt, provider=args.provider)
    if args.command == "blend":
        images = [_read_image(p) for p in args.files]
        return await service.blend(CLI_CALLER, images, dimensions=args.dimensions, provider=args.provider)
    if args.command == "wait":
        return await service.get(args.job)
    parsed = parse_action_name(args.action)
    if parsed is None:
        raise UserError(f"Unknown action '{args.action}'. Actions: {ACTIONS_HELP}.")
    parent, name = await service.get(args.job), action_name(*parsed)
    if parent.state is JobState.SUCCEEDED and name not in offers(parent):
        raise UnsupportedAction(f"Job {parent.id} does not offer {name}; it offers: "
                                f"{' '.join(offers(parent)) or 'nothing'}.")  # fmt: skip
    job, created = await service.act(CLI_CALLER, parent.id, *parsed, prompt=getattr(args, "prompt", None))
    if not created:
        out.note(f"{name} was already requested: job {job.id}")
    return job


#: the commands that may start a store; the rest need one
_CREATING = ("imagine", "describe", "blend", "shorten")


async def _command(args: argparse.Namespace, config: AppConfig, out: Out) -> int:
    async with build_app(config, serve_http=False, create_database=args.command in _CREATING) as app:
        if args.command == "jobs":
            return await _jobs(app, args.limit, out)
        if args.command == "cancel":
            job = await app.service.cancel(CLI_CALLER, args.job)
            if out.json:
                out.record(job_record(job))
            else:
                out.text(f"job {job.id} cancelled")
            return ExitCode.OK
        if getattr(args, "detach", False):  # stored queued: whoever polls next (`run`, `wait`) takes it
            for job in await _create_all(app, args, out):
                if out.json:
                    out.record(job_record(job))
                else:
                    out.text(job.id)
                out.note(f"job {job.id} ({kind_name(job)}) {job.state.value} on {job.provider}: "
                         f"`imagine-bot wait {job.id}` watches it and writes its files")  # fmt: skip
            return ExitCode.OK
        async with running(app):
            codes = []
            for job in await _create_all(app, args, out):  # all run at once; watched one after another
                ended = await watch(app, job, out)
                codes.append(await report(app, ended, out, Path(args.out or "out")))
            return next((code for code in codes if code != ExitCode.OK), ExitCode.OK)


async def _jobs(app: App, limit: int, out: Out) -> int:
    jobs = await app.service.recent(limit=limit)
    if out.json:
        for job in jobs:
            out.record(job_record(job))
        return ExitCode.OK
    table = new_table("ID", "KIND", "STATE", "PROG", "CREATED", "PROVIDER", "TRIED", "PARENT", "PROMPT",
                   "ERROR", wide=("PROMPT", "ERROR"))  # fmt: skip
    for job in jobs:
        prompt = job.request.prompt.full() if job.request.prompt else ""
        table.add_row(job.id, kind_name(job), job.state.value, f"{job.progress}%", local_time(job.created_at),
                      job.provider, ",".join(job.tried_providers) or "-", job.parent_id or "-", prompt or "-",
                      job.error or "-")  # fmt: skip
    print_table(table)
    return ExitCode.OK


async def _admin(args: argparse.Namespace, config: AppConfig, out: Out) -> int:
    """Admin commands work on the store (a running bot picks up bans, limits and pauses from it)."""
    async with build_app(config, serve_http=False) as app:
        return await run_admin_cli(app.admin, args, CLI_OWNER)


async def _web(args: argparse.Namespace, config: AppConfig) -> int:
    """`web-link` and `web-sessions` work on the store (a running bot reads sessions from it)."""
    async with build_app(config, serve_http=False) as app:
        return await run_web_cli(args, config, app.store, CLI_OWNER)


async def _db_copy(args: argparse.Namespace, config: AppConfig, out: Out) -> int:
    """Every table of the store at SRC copied to DST (see bot/store/copy.py), the counts checked."""
    out.note(f"copying {database_location(args.source)} to {database_location(args.target)}")
    copied = await copy_store(args.source, args.target, progress=not (out.quiet or out.json))
    if out.json:
        out.record({"source": copied.source, "target": copied.target, "complete": not copied.short,
                    "tables": [asdict(t) for t in copied.tables]})  # fmt: skip
    else:
        out.text("\n".join(copied.lines()))
    if copied.short:
        tables = ", ".join(t.table for t in copied.short)
        to_stderr(f"error: fewer rows in the target than in the source: {tables} (a row whose unique value "
                "the target has under another key is not copied)")
        return ExitCode.JOB_FAILED
    return ExitCode.OK


async def _db_prune(args: argparse.Namespace, config: AppConfig, out: Out) -> int:
    """The configured store pruned now, of jobs older than --older-than or retention.keep_days."""
    if args.older_than is not None:
        age = parse_period(args.older_than)
    elif config.retention.keep_days is not None:
        age = config.retention.keep_days * 86400
    else:
        raise UserError("retention.keep_days is null (keep everything): nothing to prune; "
                        "give --older-than (e.g. 30d) to prune anyway.")
    store = await JobStore.open(config.database, create=False)
    try:
        pruned = await store.prune(time.time() - age, dry_run=args.dry_run)
    finally:
        await store.close()
    where = database_location(config.database)
    if out.json:
        out.record({"database": where, **asdict(pruned)})
    else:
        out.text(f"{where}: {pruned.line()}")
    return ExitCode.OK


async def _workers(args: argparse.Namespace, config: AppConfig, out: Out) -> int:
    """The workers that share the store: live (a heartbeat within workers.lease) or gone."""
    store = await JobStore.open(config.database, create=False)
    try:
        now = time.time()
        workers = await store.workers.all(now)
    finally:
        await store.close()
    table = new_table("WORKER", "STATE", "UP", "SEEN", "LEASES", "DETAILS")
    for w in workers:
        state = "live" if now - w.seen_at <= config.workers.lease else "gone"
        if out.json:
            out.record({"id": w.id, "state": state, "started_at": iso_time(w.started_at),
                        "seen_at": iso_time(w.seen_at), "leases": w.leases, "info": w.info})  # fmt: skip
        details = " ".join(f"{k}={v}" for k, v in sorted(w.info.items())) or "-"
        table.add_row(w.id, state, _age(now - w.started_at), _age(now - w.seen_at), str(w.leases), details)
    if not out.json:
        print_table(table)
        if not workers:
            out.note("(no worker has run on this database)")
    return ExitCode.OK


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _dispatch(args: argparse.Namespace, config: AppConfig) -> int:
    out = Out(json=args.json, quiet=args.quiet)
    if args.command == "run":  # it says why when it has nothing to serve
        return asyncio.run(_unwrapped(frontends.run(config)))
    if args.command == "admin":
        return asyncio.run(_unwrapped(_admin(args, config, out)))
    if args.command == "workers":
        return asyncio.run(_unwrapped(_workers(args, config, out)))
    if args.command in ("web-link", "web-sessions"):
        return asyncio.run(_unwrapped(_web(args, config)))
    if args.command == "db":
        handler = _db_copy if args.db_command == "copy" else _db_prune
        return asyncio.run(_unwrapped(handler(args, config, out)))
    return asyncio.run(_unwrapped(_command(args, config, out)))


def _config_problems(exc: ConfigError) -> None:
    to_stderr(f"{exc.source}: invalid configuration")
    for problem in exc.problems:
        to_stderr(f"  - {problem}")


def _main(args: argparse.Namespace) -> int:
    path = find_config(args.path if args.command == "check-config" and args.path else args.config, os.environ)
    if args.command == "check-config":
        return _check_config(path)
    try:
        config = load_config(path, os.environ)
    except ConfigError as exc:
        _config_problems(exc)
        return ExitCode.CONFIG
    configure_logging(config, quiet=args.command != "run")
    faults.arm(os.environ.get("IMAGINE_BOT_FAULTS", ""))  # crash tests only: see bot/faults.py
    return _dispatch(args, config)


def _check_config(path: Path | None) -> int:
    """Every problem of the config at once; else its warnings and what it turns on."""
    checked = check_config(path, os.environ)
    if checked.problems:
        _config_problems(ConfigError(checked.source, checked.problems))
        return ExitCode.CONFIG
    for warning in checked.warnings:
        to_stderr(f"warning: {warning}")
    where = "" if path else f" (no config file: the defaults, with data in {checked.base_dir})"
    print(f"{checked.source}: OK{where}")
    for line in checked.summary:
        print(f"  {line}")
    return ExitCode.OK


def _error(message: str, code: ExitCode) -> int:
    to_stderr(f"error: {message}")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """The `imagine-bot` command; returns its exit code (EXIT_CODES). Every failure is one `error:` line
    on stderr, except an unexpected one, which is logged with its traceback (secrets redacted)."""
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return _main(args)
    except StartupError as exc:  # `run` only: through the log, so a JSON log stays JSON
        log.critical("%s", exc.message)
        return exc.code
    except UserError as exc:
        return _error(exc.message, ExitCode.REFUSED)
    except ProviderError as exc:
        return _error(exc.message, ExitCode.PROVIDER)
    except DatabaseError as exc:  # unreachable, refused, or newer than this code: nothing ran
        return _error(str(exc), ExitCode.DATABASE)
    except ConfigError as exc:  # a file the config names (e.g. moderation's word list) is bad
        _config_problems(exc)
        return ExitCode.CONFIG
    except BrokenPipeError:  # the reader went away (`imagine-bot jobs | head`): nothing left to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.OK
    except KeyboardInterrupt:
        to_stderr("\ninterrupted: the job stays in the store; `imagine-bot jobs` and `imagine-bot wait JOB` "
                "pick it up.")
        return ExitCode.INTERRUPTED
    except Exception:  # through the log, whose filter redacts secrets from the traceback too
        log.critical("imagine-bot stopped on an unexpected error; please report it with this log",
                     exc_info=True)  # fmt: skip
        return ExitCode.INTERNAL


if __name__ == "__main__":
    sys.exit(main())
