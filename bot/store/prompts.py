"""Prompt requests: a Remix prompt the bot asked a person for and has not had answered yet.

Telegram has no forms: a Remix press is answered with a message the person replies to with the edited
prompt. What that message stands for (which job, which button, whose press) is kept here, keyed by
the message, so a reply still works after a restart and a bad reply leaves the request open. (Discord
needs none: its modal carries the button in its custom_id.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.store import sql
from bot.store.engine import Engine


@dataclass(frozen=True)
class PromptRequest:
    platform: str
    chat_id: str
    message_id: str  # the bot's message that asks for the prompt (replies to it answer it)
    job_id: str  # the job whose button was pressed
    action: str  # an Action value
    index: int
    user_id: str  # who pressed: only they may answer
    created_at: float = 0.0  # set by JobService.ask_prompt


class PromptRequests:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def add(self, request: PromptRequest) -> None:
        r = request
        values = (r.platform, r.chat_id, r.message_id, r.job_id, r.action, r.index, r.user_id, r.created_at)
        await self._engine.execute(sql.PROMPT_REQUEST_ADD, values)

    async def get(self, platform: str, chat_id: str, message_id: str) -> PromptRequest | None:
        return _request(await self._engine.rows(sql.PROMPT_REQUEST_GET, (platform, chat_id, message_id)))

    async def open_for(self, pressed: PromptRequest, since: float) -> PromptRequest | None:
        """The request the same person opened for the same button in the same chat since `since`."""
        p = pressed
        params = (p.platform, p.chat_id, p.job_id, p.action, p.index, p.user_id, since)
        return _request(await self._engine.rows(sql.PROMPT_REQUEST_OPEN, params))

    async def remove(self, platform: str, chat_id: str, message_id: str) -> bool:
        """Close a request (answered or cancelled); False when it was already closed."""
        return await self._engine.execute(sql.PROMPT_REQUEST_REMOVE, (platform, chat_id, message_id)) > 0

    async def prune(self, before: float) -> None:
        """Forget requests nobody answered since `before`."""
        await self._engine.execute(sql.PROMPT_REQUESTS_PRUNE, (before,))


def _request(rows: list[Any]) -> PromptRequest | None:
    if not rows:
        return None
    row = rows[0]
    return PromptRequest(str(row[0]), str(row[1]), str(row[2]), str(row[3]), str(row[4]), int(row[5]),
                         str(row[6]), float(row[7]))  # fmt: skip
