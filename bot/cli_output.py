"""What the CLI shows: results on stdout (text, or one JSON object per job and line), progress and
notes on stderr (a rich bar on a terminal, plain lines otherwise, nothing with --quiet), tables, and
the result files a finished job leaves in the output directory."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console
from rich.progress import BarColumn, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bar
from rich.table import Table

from bot.app import App
from bot.domain import Job, JobState, action_name
from bot.errors import ExitCode
from bot.job_media import JobFiles
from bot.media import extension as extension_of
from providers.base import COMMANDS

WATCH_REREAD = 1.0  # seconds between looks at the store while watching a job


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
            to_stderr(line)


def to_stderr(line: str) -> None:
    """A line for the person at the terminal; a closed stderr (`2>&-`) must not end the command."""
    with contextlib.suppress(OSError):
        print(line, file=sys.stderr, flush=True)


def iso_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def local_time(timestamp: float) -> str:
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
        "created_at": iso_time(job.created_at), "updated_at": iso_time(job.updated_at),
        "owner": f"{job.owner.platform}:{job.owner.user_id}",
        "actions": offers(job) if job.state is JobState.SUCCEEDED else [],
        "prompts": job.result.prompts if job.result else [],
    }  # fmt: skip
    if files is not None:
        record["files"] = [str(path) for path in files]
    return record


def print_table(table: Table) -> None:
    """A table on stdout: styled to fit a terminal; elsewhere plain, one row per line, no padding."""
    if sys.stdout.isatty():
        Console(markup=False, highlight=False, emoji=False).print(table)
        return
    buffer = io.StringIO()
    Console(file=buffer, width=400, markup=False, highlight=False, emoji=False).print(table)
    print("\n".join(line.rstrip() for line in buffer.getvalue().splitlines()))


def new_table(*columns: str, wide: Iterable[str] = ()) -> Table:
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


async def watch(app: App, job: Job, out: Out) -> Job:
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
    extension = extension_of(data, "bin")
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


async def report(app: App, job: Job, out: Out, out_dir: Path) -> int:
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
        if job.result and job.result.summary:  # shorten's word scores
            out.text(job.result.summary)
        for i, prompt in enumerate(job.result.prompts if job.result else [], start=1):
            out.text(f"P{i}: {prompt}")
        if job.state is JobState.SUCCEEDED and offers(job):
            names = offers(job)
            out.text(f"actions: {' '.join(names)} (imagine-bot act {job.id} {names[0]})")
    if job.state is not JobState.SUCCEEDED:
        ended = job.state.value.replace("_", " ")
        to_stderr(f"error: {job.error or f'the job {ended}'}")
        return ExitCode.JOB_FAILED
    return ExitCode.OK


