"""Every relative link in README.md and docs/ reaches a file of the project, and every #anchor a
heading of its page; every project path named in backticks (`bot/service.py`) exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)
_CODE = re.compile(r"`([^`\n]+)`")
#: A backticked project path: a top-level folder of the project, then a file or folder name.
_PATH = re.compile(r"^(?:bot|providers|tests|docs|bench|deploy|reference)/[\w./-]*$")


def _prose(text: str) -> str:
    """The page without its fenced code blocks (links and paths there are examples, not references)."""
    return _FENCE.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: inline code marks and links dropped, lower case, punctuation
    removed (letters, digits, `_`, `-` and spaces kept), spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").lower()
    text = "".join(ch for ch in text if ch.isalnum() or ch in " _-")
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for heading in _HEADING.findall(_prose(page.read_text(encoding="utf-8"))):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> list[str]:
    return _LINK.findall(_prose(page.read_text(encoding="utf-8")))


def test_pages_found() -> None:
    assert ROOT / "README.md" in PAGES
    assert any(p.parent.name == "providers" for p in PAGES)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...: not ours to check
            continue
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.relative_to(ROOT)}")
    assert broken == [], f"{page.relative_to(ROOT)}: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_named_project_paths_exist(page: Path) -> None:
    missing = []
    for code in _CODE.findall(_prose(page.read_text(encoding="utf-8"))):
        if _PATH.match(code) and "*" not in code and not (ROOT / code).exists():
            missing.append(code)
    assert missing == [], f"{page.relative_to(ROOT)} names files that are not in the project: {missing}"


def test_slug_follows_github() -> None:
    assert slug("What a crash (or a second process) can and cannot do") == (
        "what-a-crash-or-a-second-process-can-and-cannot-do"
    )
    assert slug("`limits:` quotas and credits") == "limits-quotas-and-credits"
    assert slug("1. Create the bot with @BotFather") == "1-create-the-bot-with-botfather"
    assert slug("`mj_proxy` — the midjourney-proxy family") == "mj_proxy--the-midjourney-proxy-family"
