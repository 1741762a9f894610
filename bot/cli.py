"""`imagine-bot`: run jobs from a terminal, inspect them, check the config, and start the bot.

Results go to stdout (text, or with --json one JSON object per job and line); progress and notes go
to stderr (a bar on a terminal, plain lines otherwise, nothing with --quiet); errors are one
`error: ...` line on stderr and a distinct exit code (bot/errors.py ExitCode, listed in --help).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import logging
import os
import sys
import textwrap
import time
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console
from rich.progress import BarColumn, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bar
from rich.table import Table

from bot import faults, frontends
from bot.admin import add_cli as add_admin_cli
from bot.admin import parse_period
from bot.admin import run_cli as run_admin_cli
from bot.app import App, build_app, running
from bot.config import AppConfig, database_location, find_config, load_config
from bot.config_check import check_config
from bot.domain import ACTION_NAMES, CLI_PLATFORM, Job, JobState, Owner, action_name, parse_action_name
from bot.errors import BadImage, ConfigError, ExitCode, StartupError, UnsupportedAction, UserError
from bot.job_media import JobFiles
from bot.logs import configure_logging
from bot.media import sniff
from bot.store import DatabaseError, JobStore
from bot.store.copy import copy_store
from providers.base import COMMANDS, ImageInput
from providers.errors import ProviderError

log = logging.getLogger(__name__)

_USER = os.environ.get("USER", "admin")
WATCH_REREAD = 1.0  # seconds between looks at the store while watching a job
CLI_OWNER = Owner(platform=CLI_PLATFORM, user_id=_USER, name=_USER)
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp",
               "video/mp4": "mp4", "video/webm": "webm"}  # fmt: skip
EXIT_DATABASE = ExitCode.DATABASE  # the name older tests and scripts import


# -- output ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Out:
    """Where a command's words go: results to stdout (`text` or `record`), the rest to stderr."""

    json: bool = False
    quiet: bool = False

    def text(self, line: str) -> None:
        print(line)

    def record(self, obj: dict[str, Any]) -> None:
        print(json.dumps(obj, ensure_ascii=False))

    def note(self, line: str) -> None:
        """Said to the person at the terminal; not with --quiet, nor with --json (stderr's lines are then
        the job's progress as JSON, and `error:` lines)."""
        if not (self.quiet or self.json):
            _stderr(line)


def _stderr(line: str) -> None:
    """A line for the person at the terminal; a closed stderr (`2>&-`) must not end the command."""
    with contextlib.suppress(OSError):
        print(line, file=sys.stderr, flush=True)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _local(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def kind_name(job: Job) -> str:
    """What a job is, in the CLI's spelling: imagine, describe, blend, or the action (U2, zoom-out-2x)."""
    return job.kind.value if job.kind in COMMANDS else action_name(job.kind.value, job.index)


def offers(job: Job) -> list[str]:
    """The actions a finished job offers, as `act` takes them: U1 ... V4 reroll, P1 ... P4."""
    names = [action_name(a.value, i) for a, i in job.offers()]
    return names + [f"P{i}" for i in range(1, len(job.result.prompts) + 1)] if job.result else names


def job_record(job: Job, files: Sequence[Path] | None = None) -> dict[str, Any]:
    """A job as --json prints it (README, "Scripting"); `files` only from commands that write them."""
    record: dict[str, Any] = {
        "id": job.id, "kind": kind_name(job), "parent": job.parent_id, "state": job.state.value,
        "progress": job.progress, "provider": job.provider, "tried_providers": job.tried_providers,
        "prompt": job.request.prompt.full() if job.request.prompt else None, "error": job.error,
        "created_at": _iso(job.created_at), "updated_at": _iso(job.updated_at),
        "owner": f"{job.owner.platform}:{job.owner.user_id}",
        "actions": offers(job) if job.state is JobState.SUCCEEDED else [],
        "prompts": job.result.prompts if job.result else [],
    }  # fmt: skip
    if files is not None:
        record["files"] = [str(path) for path in files]
    return record


def _print_table(table: Table) -> None:
    """A table on stdout: styled to fit a terminal; elsewhere plain, one row per line, no padding."""
    if sys.stdout.isatty():
        Console(markup=False, highlight=False, emoji=False).print(table)
        return
    buffer = io.StringIO()
    Console(file=buffer, width=400, markup=False, highlight=False, emoji=False).print(table)
    print("\n".join(line.rstrip() for line in buffer.getvalue().splitlines()))


def _table(*columns: str, wide: Iterable[str] = ()) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for name in columns:
        table.add_column(name, no_wrap=True, overflow="ellipsis", max_width=40 if name in wide else None)
    return table


# -- watching a job ----------------------------------------------------------------------------------


class View(Protocol):
    def show(self, job: Job) -> None: ...

    def close(self) -> None: ...


class _Silent:
    def show(self, job: Job) -> None:
        pass

    def close(self) -> None:
        pass


class _Lines:
    """Plain lines on stderr: `job ID: 40% running` at each new state and each tenth of the way, or
    (--json) the job as a JSON object at every change."""

    def __init__(self, as_json: bool) -> None:
        self._json = as_json
        self._last: object = None

    def show(self, job: Job) -> None:
        if self._json:
            line = json.dumps(job_record(job), ensure_ascii=False)
            key: object = line
        else:
            line, key = f"job {job.id}: {job.progress}% {job.state.value}", (job.state, job.progress // 10)
        if key != self._last:
            print(line, file=sys.stderr, flush=True)
            self._last = key

    def close(self) -> None:
        pass


class _ProgressBar:
    """A rich progress bar on stderr, redrawn in place (stderr is a terminal)."""

    def __init__(self, console: Console) -> None:
        self._bar = Bar(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                        TextColumn("{task.fields[state]}"), TimeElapsedColumn(), console=console,
                        redirect_stdout=False, redirect_stderr=False)  # fmt: skip
        self._task: TaskID | None = None

    def show(self, job: Job) -> None:
        state = f"{job.state.value} on {job.provider}"
        if self._task is None:
            self._bar.start()
            self._task = self._bar.add_task(f"{job.id} {kind_name(job)}", total=100, state=state)
        self._bar.update(self._task, completed=job.progress, state=state)

    def close(self) -> None:
        if self._task is not None:
            self._bar.stop()


def _view(out: Out) -> View:
    if out.quiet:
        return _Silent()
    if out.json:
        return _Lines(as_json=True)
    console = Console(stderr=True, markup=False, highlight=False, emoji=False)
    return _ProgressBar(console) if console.is_terminal else _Lines(as_json=False)


class Watcher:
    """A job listener that shows one job's changes until it ends. Progress that can't be shown (stderr
    closed) is dropped: the job and its result on stdout carry on."""

    def __init__(self, job_id: str, view: View) -> None:
        self.job_id = job_id
        self.done = asyncio.Event()
        self.job: Job | None = None
        self._view: View = view

    async def job_changed(self, job: Job) -> None:
        if job.id != self.job_id or self.done.is_set():
            return
        self.job = job
        try:
            self._view.show(job)
        except OSError:  # raised here it would only reach the listener fan-out's log, on stderr too
            self._view = _Silent()
        if job.terminal:
            self.close()
            self.done.set()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._view.close()


async def _watch(app: App, job: Job, out: Out) -> Job:
    """Show progress until the job ends; returns it as it ended."""
    watcher = Watcher(job.id, _view(out))
    app.listeners.add(watcher)
    try:
        current = await app.service.get(job.id)
        position = await app.service.queue_position(current)
        where = f", queued at position {position}" if position > 1 and not current.terminal else ""
        out.note(f"job {job.id} ({kind_name(job)}) on {job.provider}{where}")
        await watcher.job_changed(current)
        while not watcher.done.is_set():  # another process (`run`, a second CLI) may be the one
            with contextlib.suppress(TimeoutError):  # that polls it: look at the store now and then
                await asyncio.wait_for(watcher.done.wait(), WATCH_REREAD)
            if not watcher.done.is_set():
                await watcher.job_changed(await app.service.get(job.id))
    finally:
        app.listeners.remove(watcher)
        watcher.close()
    assert watcher.job is not None
    return watcher.job


# -- result files ------------------------------------------------------------------------------------


def file_names(job: Job, files: JobFiles) -> list[tuple[str, bytes]]:
    """Each file's name without its extension (README, "Result files"): `<id>-grid`; the images of a
    grid or several images `<id>-1` ... `<id>-4` (as U1-U4 number them); a job's one image named
    after its action, `<id>-U2`, `<id>-upscale-creative`; videos `<id>-video1` ..."""
    named: list[tuple[str, bytes]] = []
    if files.grid:
        named.append(("grid", files.grid))
    if len(files.images) == 1 and not files.grid:
        named.append((kind_name(job), files.images[0]))
    else:
        named += [(str(i), data) for i, data in enumerate(files.images, start=1)]
    named += [(f"video{i}", data) for i, data in enumerate(files.videos, start=1)]
    return [(f"{job.id}-{name}", data) for name, data in named]


def write_new(out_dir: Path, stem: str, data: bytes) -> tuple[Path, bool]:
    """Write `data` as `<stem>.<ext>` in `out_dir`, never over another file: a name taken by different
    bytes moves on to `<stem>-2.<ext>`, `-3` ...; the same bytes already there are kept (False)."""
    extension = _EXTENSIONS.get(sniff(data) or "", "bin")
    n = 1
    while True:
        path = out_dir / (f"{stem}.{extension}" if n == 1 else f"{stem}-{n}.{extension}")
        try:
            with path.open("xb") as file:  # exclusive: a second CLI writing the same job can't clobber it
                file.write(data)
            return path, True
        except FileExistsError:
            if path.is_file() and path.read_bytes() == data:
                return path, False
        n += 1


def _write_all(out_dir: Path, named: list[tuple[str, bytes]]) -> list[tuple[Path, bool]]:
    out_dir.mkdir(parents=True, exist_ok=True)
    return [write_new(out_dir, stem, data) for stem, data in named]


async def _report(app: App, job: Job, out: Out, out_dir: Path) -> int:
    """The ended job on stdout, its files written; JOB_FAILED unless it succeeded."""
    if not out.json:
        out.text(f"job {job.id} ({kind_name(job)}): {job.state.value} on {job.provider}")
    written: list[tuple[Path, bool]] = []
    if job.state is JobState.SUCCEEDED:
        named = file_names(job, await app.service.media.files(job))
        written = await asyncio.to_thread(_write_all, out_dir, named)
    if out.json:
        out.record(job_record(job, [path for path, _ in written]))
    else:
        for path, new in written:
            out.text(f"wrote {path}" if new else f"kept {path} (already there, the same)")
        for i, prompt in enumerate(job.result.prompts if job.result else [], start=1):
            out.text(f"P{i}: {prompt}")
        if job.state is JobState.SUCCEEDED and offers(job):
            names = offers(job)
            out.text(f"actions: {' '.join(names)} (imagine-bot act {job.id} {names[0]})")
    if job.state is not JobState.SUCCEEDED:
        ended = job.state.value.replace("_", " ")
        _stderr(f"error: {job.error or f'the job {ended}'}")
        return ExitCode.JOB_FAILED
    return ExitCode.OK


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


async def _create(app: App, args: argparse.Namespace, out: Out) -> Job:
    """The job the command asks for: a new one, or (`wait`, an action pressed before) a stored one."""
    service = app.service
    if args.command == "imagine":
        return await service.imagine(CLI_OWNER, args.prompt, provider=args.provider)
    if args.command == "describe":
        return await service.describe(CLI_OWNER, _read_image(args.file), provider=args.provider)
    if args.command == "blend":
        images = [_read_image(p) for p in args.files]
        return await service.blend(CLI_OWNER, images, dimensions=args.dimensions, provider=args.provider)
    if args.command == "wait":
        return await service.get(args.job)
    parsed = parse_action_name(args.action)
    if parsed is None:
        raise UserError(f"Unknown action '{args.action}'. Actions: {_ACTIONS}.")
    parent, name = await service.get(args.job), action_name(*parsed)
    if parent.state is JobState.SUCCEEDED and name not in offers(parent):
        raise UnsupportedAction(f"Job {parent.id} does not offer {name}; it offers: "
                                f"{' '.join(offers(parent)) or 'nothing'}.")  # fmt: skip
    job, created = await service.act(CLI_OWNER, parent.id, *parsed)
    if not created:
        out.note(f"{name} was already requested: job {job.id}")
    return job


_CREATING = ("imagine", "describe", "blend")  # the commands that may start a store; the rest need one


async def _command(args: argparse.Namespace, config: AppConfig, out: Out) -> int:
    async with build_app(config, serve_http=False, create_database=args.command in _CREATING) as app:
        if args.command == "jobs":
            return await _jobs(app, args.limit, out)
        if args.command == "cancel":
            job = await app.service.cancel(CLI_OWNER, args.job, admin=True)  # the CLI is an operator
            if out.json:
                out.record(job_record(job))
            else:
                out.text(f"job {job.id} cancelled")
            return ExitCode.OK
        if getattr(args, "detach", False):  # stored queued: whoever polls next (`run`, `wait`) takes it
            job = await _create(app, args, out)
            if out.json:
                out.record(job_record(job))
            else:
                out.text(job.id)
            out.note(f"job {job.id} ({kind_name(job)}) {job.state.value} on {job.provider}: "
                     f"`imagine-bot wait {job.id}` watches it and writes its files")  # fmt: skip
            return ExitCode.OK
        async with running(app):
            job = await _create(app, args, out)
            ended = await _watch(app, job, out)
            return await _report(app, ended, out, Path(args.out or "out"))


async def _jobs(app: App, limit: int, out: Out) -> int:
    jobs = await app.service.recent(limit=limit)
    if out.json:
        for job in jobs:
            out.record(job_record(job))
        return ExitCode.OK
    table = _table("ID", "KIND", "STATE", "PROG", "CREATED", "PROVIDER", "TRIED", "PARENT", "PROMPT",
                   "ERROR", wide=("PROMPT", "ERROR"))  # fmt: skip
    for job in jobs:
        prompt = job.request.prompt.full() if job.request.prompt else ""
        table.add_row(job.id, kind_name(job), job.state.value, f"{job.progress}%", _local(job.created_at),
                      job.provider, ",".join(job.tried_providers) or "-", job.parent_id or "-", prompt or "-",
                      job.error or "-")  # fmt: skip
    _print_table(table)
    return ExitCode.OK


async def _admin(args: argparse.Namespace, config: AppConfig, out: Out) -> int:
    """Admin commands work on the store (a running bot picks up bans, limits and pauses from it)."""
    async with build_app(config, serve_http=False) as app:
        return await run_admin_cli(app.admin, args, CLI_OWNER)


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
        _stderr(f"error: fewer rows in the target than in the source: {tables} (a row whose unique value "
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
    table = _table("WORKER", "STATE", "UP", "SEEN", "LEASES", "DETAILS")
    for w in workers:
        state = "live" if now - w.seen_at <= config.workers.lease else "gone"
        if out.json:
            out.record({"id": w.id, "state": state, "started_at": _iso(w.started_at),
                        "seen_at": _iso(w.seen_at), "leases": w.leases, "info": w.info})  # fmt: skip
        details = " ".join(f"{k}={v}" for k, v in sorted(w.info.items())) or "-"
        table.add_row(w.id, state, _age(now - w.started_at), _age(now - w.seen_at), str(w.leases), details)
    if not out.json:
        _print_table(table)
        if not workers:
            out.note("(no worker has run on this database)")
    return ExitCode.OK


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


# -- the command line --------------------------------------------------------------------------------

_CONFIG_HELP = "config file (default: $IMAGINE_BOT_CONFIG or ./config.yaml)"
_DESCRIPTION = """\
Run image jobs from a terminal (imagine, act, describe, blend, wait), look at them (jobs, workers),
administer the bot (admin, db) and start it (run).

Results go to stdout: text, or with --json one JSON object per job per line. Progress and notes go to
stderr: a bar on a terminal, plain lines otherwise (the job as JSON lines with --json), nothing with
--quiet. An error is one `error: ...` line on stderr and an exit code of its own (below)."""
_ACTIONS = f"U1-U4, V1-V4, {', '.join(ACTION_NAMES.values())}, P1-P4 (a describe's prompts)"
#: What each exit code means, for --help (and the README's table).
EXIT_CODES: dict[ExitCode, str] = {
    ExitCode.OK: "done",
    ExitCode.JOB_FAILED: "the job failed, was cancelled or timed out (or a db copy missed rows)",
    ExitCode.USAGE: "the command line is wrong",
    ExitCode.DATABASE: "the database can't be used",
    ExitCode.REFUSED: "the input was refused: a bad prompt or flag, an unknown job or action, a limit, a ban",
    ExitCode.PROVIDER: "the provider refused or could not be reached",
    ExitCode.CONFIG: "the config file is invalid",
    ExitCode.TOKEN_REFUSED: "run: a chat platform refused the bot token",
    ExitCode.UNREACHABLE: "run: a chat platform or the address to serve on could not be had",
    ExitCode.NO_FRONTEND: "run: nothing to serve (no chat platform configured)",
    ExitCode.INTERNAL: "an unexpected error (a bug): its traceback is in the log on stderr",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C); the job stays in the store",
}
_EPILOG = """\
examples:
  imagine-bot imagine "a lighthouse at dusk --ar 16:9"    # progress on stderr, files in ./out
  imagine-bot act JOB U2                                  # press a button of a finished job
  imagine-bot imagine "a fox" --json | jq -r '.files[]'   # one JSON object per job on stdout
  id=$(imagine-bot imagine "a fox" --detach)              # queue it, print its id, return at once
  imagine-bot wait "$id" --quiet                          # later: watch it and write its files
  imagine-bot jobs --json | jq -r 'select(.state == "failed") | .id'

--json, --quiet and --config go before or after the command. Run `imagine-bot COMMAND --help` for a
command's own options.

exit codes:
""" + "\n".join(f"  {code.value:>3}  {text}" for code, text in EXIT_CODES.items())
_PROMPT_EPILOG = """\
prompt flags (Midjourney's; each provider takes its own set, and a flag it can't serve is refused with
the list it supports, before anything is spent):
  --ar W:H  --v N  --niji N  --s N  --c N  --q N  --seed N  --no WORDS  --weird N  --tile  --iw N
  --style NAME  --r N ...   and the speed: --relax, --fast, --turbo

examples:
  imagine-bot imagine "a lighthouse at dusk --ar 16:9 --s 250"
  imagine-bot imagine "a fox in the snow" --provider mj --out ~/pictures
  imagine-bot imagine "a fox" --json | jq -r .id
  imagine-bot imagine "a fox" --detach        # prints the job id; `imagine-bot wait ID` later
"""
_FILES_EPILOG = """\
result files, in --out (default ./out), never written over another file:
  <id>-grid.png            the grid
  <id>-1.png ... -4.png    the grid's four images, numbered as U1-U4 pick them
  <id>-U2.png              a job's single image, named after its action (U2, upscale-creative ...)
  <id>-video1.mp4          videos
A name taken by other bytes gets -2, -3 ... (<id>-grid-2.png); the same bytes already there are kept.
"""
_ACT_EPILOG = f"""\
actions (case does not matter):
{textwrap.fill(_ACTIONS + ".", 100, initial_indent="  ", subsequent_indent="  ")}
A finished job lists what it offers: `actions: U1 U2 U3 U4 V1 V2 V3 V4 reroll`.

examples:
  imagine-bot act JOB U2            # upscale the second image
  imagine-bot act JOB vary-strong   # on an upscale
  imagine-bot act JOB P3            # imagine a describe's third prompt

{_FILES_EPILOG}"""


def _package_version() -> str:
    try:
        return version("imagine-bot")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _everywhere(parser: argparse.ArgumentParser) -> None:
    """Accept `--config PATH`, `--json` and `--quiet` after every subcommand too (`imagine-bot run --config
    PATH`, as people type it); the later one wins. SUPPRESS as the default: a subcommand given none keeps
    the earlier one."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                child.add_argument("--config", default=argparse.SUPPRESS, help=_CONFIG_HELP)
                if name not in ("run", "check-config"):
                    _output_flags(child, default=argparse.SUPPRESS)
                _everywhere(child)


def _output_flags(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument("--json", action="store_true", default=default,
                        help="results as JSON, one object per job (or row) per line")  # fmt: skip
    parser.add_argument("--quiet", "-q", action="store_true", default=default,
                        help="no progress and no notes on stderr (errors still)")  # fmt: skip


def _job_command(sub: Any, name: str, help_text: str, epilog: str = _FILES_EPILOG) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text, epilog=epilog,
                                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", metavar="DIR", help="directory for the result files (default ./out)")
    return p


def _detachable(p: argparse.ArgumentParser) -> None:
    p.add_argument("--detach", action="store_true",
                   help="store the job, print its id and return; a running bot or `wait JOB` takes it")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imagine-bot", description=_DESCRIPTION, epilog=_EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_package_version()}")
    parser.add_argument("--config", help=_CONFIG_HELP)
    _output_flags(parser, default=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = _job_command(sub, "imagine", "generate a grid from a prompt", _PROMPT_EPILOG + "\n" + _FILES_EPILOG)
    p.add_argument("prompt", help="what to draw, with any flags, as one argument: \"a fox --ar 16:9\"")
    p.add_argument("--provider", help="a provider's name from the config (default: default_provider)")
    _detachable(p)
    p = _job_command(sub, "act", "press a button of a finished job: U1-U4, V1-V4, reroll ...", _ACT_EPILOG)
    p.add_argument("job", help="the job's id")
    p.add_argument("action", help="U1-U4, V1-V4, reroll, vary-strong, zoom-out-2x ... (see below)")
    _detachable(p)
    p = _job_command(sub, "describe", "four prompts for an image file")
    p.add_argument("file", help="an image file (PNG, JPEG, GIF, WEBP)")
    p.add_argument("--provider", help="a provider's name from the config (default: default_provider)")
    _detachable(p)
    p = _job_command(sub, "blend", "blend 2-5 image files")
    p.add_argument("files", nargs="+", metavar="FILE", help="2 to 5 image files")
    p.add_argument("--dimensions", choices=("portrait", "square", "landscape"), help="the result's shape")
    p.add_argument("--provider", help="a provider's name from the config (default: default_provider)")
    _detachable(p)
    p = _job_command(sub, "wait", "watch a job until it ends and write its files")
    p.add_argument("job", help="the job's id (from `imagine --detach`, `jobs`, or an interrupted command)")
    p = sub.add_parser("cancel", help="cancel a queued or running job")
    p.add_argument("job", help="the job's id")
    p = sub.add_parser("jobs", help="recent jobs: created, state, providers tried, error")
    p.add_argument("--limit", type=int, default=20, help="how many, newest first (default 20)")
    add_admin_cli(sub)
    p = sub.add_parser("db", help="move the store to another database; prune old jobs now")
    db = p.add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")
    p = db.add_parser("copy", help="copy every table of a store to another database (a path or a URL)")
    p.add_argument("source", metavar="SRC", help="the store to copy: a SQLite path or a postgresql:// URL")
    p.add_argument("target", metavar="DST", help="where to: a SQLite path or a postgresql:// URL")
    p = db.add_parser("prune", help="forget finished jobs older than retention.keep_days (or --older-than)")
    p.add_argument("--dry-run", action="store_true", help="only count what would go")
    p.add_argument("--older-than", metavar="PERIOD", help="e.g. 30d, 12h, 2w (default: retention.keep_days)")
    sub.add_parser("run", help="start the configured chat frontends")
    sub.add_parser("workers", help="the workers sharing the database: live or gone, their leases")
    p = sub.add_parser("check-config", help="validate a config file and list every problem")
    p.add_argument("path", nargs="?", help="the config file (default: as --config)")
    _everywhere(parser)
    return parser


def _dispatch(args: argparse.Namespace, config: AppConfig) -> int:
    out = Out(json=args.json, quiet=args.quiet)
    if args.command == "run":  # it says why when it has nothing to serve
        return asyncio.run(_unwrapped(frontends.run(config)))
    if args.command == "admin":
        return asyncio.run(_unwrapped(_admin(args, config, out)))
    if args.command == "workers":
        return asyncio.run(_unwrapped(_workers(args, config, out)))
    if args.command == "db":
        handler = _db_copy if args.db_command == "copy" else _db_prune
        return asyncio.run(_unwrapped(handler(args, config, out)))
    return asyncio.run(_unwrapped(_command(args, config, out)))


def _config_problems(exc: ConfigError) -> None:
    _stderr(f"{exc.source}: invalid configuration")
    for problem in exc.problems:
        _stderr(f"  - {problem}")


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
        _stderr(f"warning: {warning}")
    where = "" if path else f" (no config file: the defaults, with data in {checked.base_dir})"
    print(f"{checked.source}: OK{where}")
    for line in checked.summary:
        print(f"  {line}")
    return ExitCode.OK


def _error(message: str, code: ExitCode) -> int:
    _stderr(f"error: {message}")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """The `imagine-bot` command; returns its exit code (EXIT_CODES). Every failure is one `error:` line
    on stderr, except an unexpected one, which is logged with its traceback (secrets redacted)."""
    args = _parser().parse_args(argv)
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
        _stderr("\ninterrupted: the job stays in the store; `imagine-bot jobs` and `imagine-bot wait JOB` "
                "pick it up.")
        return ExitCode.INTERRUPTED
    except Exception:  # through the log, whose filter redacts secrets from the traceback too
        log.critical("imagine-bot stopped on an unexpected error; please report it with this log",
                     exc_info=True)  # fmt: skip
        return ExitCode.INTERNAL


if __name__ == "__main__":
    sys.exit(main())
