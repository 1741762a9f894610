"""`imagine-bot`'s command line: its commands, their arguments and help (with the actions, the prompt
flags, the result files and the exit codes listed), and the flags every command takes."""

from __future__ import annotations

import argparse
import textwrap
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from bot.admin import add_cli as add_admin_cli
from bot.domain import ACTION_NAMES
from bot.errors import ExitCode
from bot.web.cli import add_cli as add_web_cli

# -- the command line --------------------------------------------------------------------------------

_CONFIG_HELP = "config file (default: $IMAGINE_BOT_CONFIG or ./config.yaml)"
_DESCRIPTION = """\
Run image jobs from a terminal (imagine, act, describe, blend, wait), look at them (jobs, workers),
administer the bot (admin, db) and start it (run).

Results go to stdout: text, or with --json one JSON object per job per line. Progress and notes go to
stderr: a bar on a terminal, plain lines otherwise (the job as JSON lines with --json), nothing with
--quiet. An error is one `error: ...` line on stderr and an exit code of its own (below)."""
ACTIONS_HELP = f"U1-U4, V1-V4, {', '.join(ACTION_NAMES.values())}, P1-P5 (a describe's or shorten's prompts)"
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
{textwrap.fill(ACTIONS_HELP + ".", 100, initial_indent="  ", subsequent_indent="  ")}
A finished job lists what it offers: `actions: U1 U2 U3 U4 V1 V2 V3 V4 reroll`.

examples:
  imagine-bot act JOB U2            # upscale the second image
  imagine-bot act JOB vary-strong   # on an upscale
  imagine-bot act JOB P3            # imagine a describe's third prompt
  imagine-bot act JOB custom-zoom --prompt "a fox in a meadow --zoom 1.5"
  imagine-bot act JOB V2 --remix "a fox in the snow --ar 16:9"   # Remix: V2 with an edited prompt

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


def parser() -> argparse.ArgumentParser:
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
    p.add_argument("--prompt", "--remix", dest="prompt", metavar="PROMPT",
                   help="the prompt the action asks for: custom-zoom's, with --zoom 1-2; or, as --remix, "
                        "the edited prompt of a Remix of V1-V4, reroll, vary-subtle/-strong or a pan")
    _detachable(p)
    p = _job_command(sub, "describe", "four prompts for an image file")
    p.add_argument("file", help="an image file (PNG, JPEG, GIF, WEBP)")
    p.add_argument("--provider", help="a provider's name from the config (default: default_provider)")
    _detachable(p)
    p = _job_command(sub, "shorten", "weigh a prompt's words and suggest up to five shorter prompts (P1-P5)")
    p.add_argument("prompt", help="the prompt, with any flags, as one argument: \"a fox --ar 16:9\"")
    p.add_argument("--provider", help="a provider's name (its own shorten where it has one, else the bot's)")
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
    sub.add_parser("run", help="start the configured chat frontends (and the web pages, web.enabled)")
    add_web_cli(sub)
    sub.add_parser("workers", help="the workers sharing the database: live or gone, their leases")
    p = sub.add_parser("check-config", help="validate a config file and list every problem")
    p.add_argument("path", nargs="?", help="the config file (default: as --config)")
    _everywhere(parser)
    return parser


