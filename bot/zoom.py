"""Custom Zoom's prompt: Midjourney's form asks for the prompt again with `--zoom 1-2` in it.

`--zoom` is not a prompt flag (it means nothing to /imagine, so it is not in the flag table of
providers/base.py): it is taken out of the answer here, checked, and travels beside the prompt
(`GenerationRequest.zoom`), and each adapter writes it the way its API wants it.
"""

from __future__ import annotations

import re

from bot.errors import InvalidPrompt
from bot.i18n import t
from providers.base import ZOOM_RANGE

#: The factor the form starts with: Midjourney pre-fills `--zoom 2`.
DEFAULT_ZOOM = 2.0
_ZOOM = re.compile(r"(?:^|\s)--zoom(?:\s+(?P<value>\S+))?(?=\s|$)", re.IGNORECASE)


def split_zoom(text: str) -> tuple[str, float]:
    """`text` without its `--zoom`, and the factor; InvalidPrompt (saying the range) when it has none,
    more than one, or one outside 1-2."""
    low, high = ZOOM_RANGE
    usage = t("Custom Zoom needs --zoom followed by a number from {low} to {high}, e.g. --zoom 1.5.",
              low=format(low, "g"), high=format(high, "g"))
    found = list(_ZOOM.finditer(text))
    if len(found) != 1 or found[0]["value"] is None:
        raise InvalidPrompt(usage if not found or found[0]["value"] is None else t("Give --zoom only once."))
    try:
        factor = float(found[0]["value"])
    except ValueError:
        raise InvalidPrompt(t("--zoom {value} is not a number. {usage}", value=found[0]["value"],
                              usage=usage)) from None
    if not low <= factor <= high:
        raise InvalidPrompt(t("--zoom {value} is out of range: {usage}", value=found[0]["value"],
                              usage=usage))
    rest = (text[: found[0].start()] + " " + text[found[0].end() :]).strip()
    return re.sub(r"\s{2,}", " ", rest), factor


def with_zoom(prompt: str, factor: float = DEFAULT_ZOOM) -> str:
    """The text Custom Zoom's form starts from: the prompt with `--zoom <factor>` at the end."""
    return f"{prompt} --zoom {factor:g}".strip()
