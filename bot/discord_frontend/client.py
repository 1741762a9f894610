"""The Discord frontend: a discord.py client in the bot's event loop, its commands, buttons and outbox.

`DiscordFrontend(app).serve()` logs in with `client.start(token)` (never `client.run`), syncs the
slash commands (to `discord.guild_ids` at once, else globally), registers the Outbox as a job
listener, and runs until cancelled; on the way out it gives pending edits a moment, then closes.
Once connected it finishes what the last run left: the interactions it had committed but not
handled (the inbox), the first messages of jobs that never got one, the final edits not delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import discord
import yarl
from discord import app_commands

from bot import i18n
from bot.app import FrontendParts
from bot.config import DiscordConfig
from bot.discord_frontend.admin import AdminHandlers
from bot.discord_frontend.commands import CatalogueTranslator, install
from bot.discord_frontend.handlers import Handlers
from bot.discord_frontend.inbox import InteractionInbox
from bot.discord_frontend.outbox import PLATFORM, Outbox
from bot.discord_frontend.replies import GENERIC, locale_of, tell
from bot.discord_frontend.views import ActionButton, ActionClient, remix_answer
from bot.discord_frontend.web_command import install_web
from bot.domain import ActionRef
from bot.errors import ExitCode, StartupError
from bot.i18n import t
from bot.store import InboxEntry, JobStore

log = logging.getLogger(__name__)
_AUTHENTICATION_FAILED = 4004  # the gateway's close code for a bad token


def _token_refused() -> StartupError:
    message = ("Discord refused the bot token (discord.token): copy it again from the Developer Portal "
               "(Bot → Reset Token).")
    return StartupError(message, ExitCode.TOKEN_REFUSED)

DRAIN_ON_EXIT = 3.0  # seconds pending edits get when the bot stops


@contextlib.contextmanager
def pointed_at(api_base: str | None, gateway_url: str | None) -> Iterator[None]:
    """discord.py reads its REST base and default gateway from class attributes: set them for the
    life of the client (reverse proxies, or a fake Discord in tests) and restore them afterwards."""
    import discord.gateway
    import discord.http

    saved = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    if api_base:
        discord.http.Route.BASE = api_base.rstrip("/")
    if gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
    try:
        yield
    finally:
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved


class _Tree(app_commands.CommandTree["ImagineClient"]):
    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return await self.client.handlers.allowed(interaction)

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        if isinstance(error, app_commands.CheckFailure):
            return
        await self.client.handlers.inbox.skipped(interaction)  # e.g. an option it could not convert
        log.error("command %s failed", interaction.command and interaction.command.name, exc_info=error)
        locale = await locale_of(interaction, self.client.handlers.languages)
        with i18n.use(locale), contextlib.suppress(discord.HTTPException):
            await tell(interaction, t(GENERIC))


class ImagineClient(ActionClient):
    def __init__(self, config: DiscordConfig, **shards: Any) -> None:
        intents = discord.Intents.none()
        intents.guilds = True  # channels and guild upload limits; no message content needed
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False  # no voice: no warning
        super().__init__(intents=intents, guild_ready_timeout=config.guild_ready_timeout,
                         max_ratelimit_timeout=30.0, **shards)
        self.config = config
        self.tree = _Tree(self)
        self.ready = asyncio.Event()
        self._job_handlers: Handlers | None = None
        self.identify_gate: Callable[[int], Awaitable[None]] | None = None  # sharded: see IdentifyGate

    @property
    def handlers(self) -> Handlers:
        assert self._job_handlers is not None, "attach() the handlers before starting"
        return self._job_handlers

    def attach(self, handlers: Handlers, admin: AdminHandlers) -> None:
        self._job_handlers = handlers
        install(self.tree, handlers, admin)

    async def setup_hook(self) -> None:
        self.add_dynamic_items(ActionButton)
        if isinstance(self.identify_gate, IdentifyGate):  # Discord says how many may start at once
            _, _, limits = await self.http.get_bot_gateway()
            self.identify_gate.buckets = max(1, int(limits.get("max_concurrency", 1)))
        await self.tree.set_translator(CatalogueTranslator())  # each locale's names and descriptions
        if not self.config.guild_ids:
            synced = await self.tree.sync()
            log.info("synced %d global commands (they may take a while to appear)", len(synced))
            return
        for guild_id in self.config.guild_ids:
            guild = discord.Object(guild_id)
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)
        log.info("synced commands to %d guild(s)", len(self.config.guild_ids))

    async def on_ready(self) -> None:
        log.info("discord: connected as %s to %d guild(s)", self.user, len(self.guilds))
        self.ready.set()

    async def on_action(self, interaction: discord.Interaction, ref: ActionRef | None) -> None:
        await self.handlers.press(interaction, ref)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """A submitted Remix form (the only modal the bot sends): its button is in its custom_id."""
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        answer = remix_answer(interaction.data)
        if answer is not None:
            await self.handlers.remix(interaction, *answer)

    async def on_shard_connect(self, shard_id: int) -> None:
        if isinstance(self.identify_gate, IdentifyGate):
            await self.identify_gate.started(shard_id)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        if self.identify_gate is None:
            await super().before_identify_hook(shard_id, initial=initial)
        else:
            await self.identify_gate(shard_id or 0)


class ShardedClient(ImagineClient, discord.AutoShardedClient):
    """Several shards in one process (`discord.shard_count`, `discord.shard_ids`)."""


def make_client(config: DiscordConfig) -> ImagineClient:
    if config.shard_count is None:
        return ImagineClient(config)
    count = None if config.shard_count == "auto" else config.shard_count
    return ShardedClient(config, shard_count=count, shard_ids=config.shard_ids)


class IdentifyGate:
    """Discord starts at most `max_concurrency` sessions per 5 s, in buckets `shard_id % max_concurrency`,
    counting every process of the bot: an IDENTIFY waits for its bucket's lease in the store, held until
    `identify_interval` seconds after the session started (READY; or CONNECTING seconds if it never
    does), never renewed, so workers starting together take turns."""

    CONNECTING = 30.0  # seconds the bucket is held while a session connects and identifies

    def __init__(self, store: JobStore, worker_id: str, interval: float,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._worker_id = worker_id
        self._interval = interval
        self._clock = clock
        self._holding: dict[int, tuple[str, str]] = {}  # shard id -> (lease, holder) while it connects
        self.buckets = 1  # max_concurrency, from GET /gateway/bot at login

    async def __call__(self, shard_id: int) -> None:
        name = f"discord:identify:{shard_id % self.buckets}"
        holder = f"{self._worker_id}:{shard_id}:{secrets.token_hex(3)}"
        while True:
            now = self._clock()
            if await self._store.workers.take(name, holder, now, now + self.CONNECTING):
                self._holding[shard_id] = name, holder
                return
            await asyncio.sleep(min(1.0, self._interval / 5) or 0.05)

    async def started(self, shard_id: int) -> None:
        """The shard's session started: its bucket frees up `identify_interval` seconds from now."""
        if (held := self._holding.pop(shard_id, None)) is not None:
            now = self._clock()
            await self._store.workers.take(*held, now, now + self._interval)


class DiscordFrontend:
    name = "discord"

    def __init__(self, app: FrontendParts, clock: Callable[[], float] = time.time) -> None:
        assert app.config.discord is not None, "the discord section is not configured"
        self.app = app
        self.config = app.config.discord
        self.clock = clock
        self.client = make_client(self.config)
        if isinstance(self.client, ShardedClient):
            self.client.identify_gate = IdentifyGate(app.store, app.worker.id, self.config.identify_interval)
            shards = self.config.shard_ids or ("all" if self.config.shard_count == "auto" else
                                               list(range(int(self.config.shard_count or 1))))
            app.worker.info["discord_shards"] = shards
            app.worker.info["discord_shard_count"] = self.config.shard_count
        self.outbox = Outbox(self.client, app.service, app.board, self.config,
                             owns=lambda channel_id: app.worker.owns_chat(PLATFORM, channel_id))
        self.inbox = InteractionInbox(self.client, app.store, clock, worker_id=app.worker.id)
        self.client.attach(Handlers(self.client, app.service, self.outbox, self.inbox, app.config,
                                    app.languages),
                           AdminHandlers(app.admin, app.config.admins, app.languages))
        install_web(self.client.tree, app.web.auth if app.web else None, app.config.admins,
                    app.config.web.link_expiry, app.languages)
        self.drain_timeout = DRAIN_ON_EXIT
        self._adopted_since = clock()
        app.metrics.watch_delivery(PLATFORM, self.outbox.delivery)
        app.health.frontends.append(self)

    @property
    def connected(self) -> bool:
        """For /healthz: logged in, gateway up and the guilds received."""
        return self.client.is_ready() and not self.client.is_closed()

    async def serve(self) -> None:
        token = self.config.token.get_secret_value()
        left = await self.inbox.left()  # before any interaction of this run can arrive
        with pointed_at(self.config.api_base, self.config.gateway_url):
            self.app.listeners.add(self.outbox.messages)
            if self.app.web is not None:  # jobs made on the web pages (Vary (Region)) shown here too
                self.app.web.shows[PLATFORM] = self.outbox.messages.show
            try:
                async with asyncio.TaskGroup() as group:
                    delivery = group.create_task(self.outbox.messages.run(), name="discord-delivery")
                    resume = group.create_task(self._resume(left, self.clock()), name="discord-resume")
                    try:
                        await self._log_in(token)
                        await self._connect()
                    finally:
                        self.client.handlers.stopping = True  # no new jobs while the edits drain
                        resume.cancel()
                        await self._drain()
                        await self.client.close()
                        delivery.cancel()
            finally:
                self.app.listeners.remove(self.outbox.messages)

    async def _log_in(self, token: str) -> None:
        """Log in (GET /users/@me); while Discord can't be reached, say so in one line and try again
        with a growing wait (up to a minute): the other platform is served meanwhile."""
        failures = 0
        while True:
            try:
                await self.client.login(token)
                return
            except discord.LoginFailure:
                raise _token_refused() from None
            except (OSError, TimeoutError, aiohttp.ClientError, discord.HTTPException) as exc:
                failures += 1
                wait = min(60.0, 2.0**failures)
                why = f"HTTP {exc.status}" if isinstance(exc, discord.HTTPException) else type(exc).__name__
                log.error("discord: can't reach Discord (%s); retrying in %.0f s", why, wait)
                await asyncio.sleep(wait)

    async def _connect(self) -> None:
        """The gateway, reconnecting as discord.py does; the refusals that no reconnect can mend (a
        token the gateway rejects, intents the application lacks) are StartupErrors."""
        try:
            await self.client.connect(reconnect=True)
        except discord.PrivilegedIntentsRequired:
            raise StartupError("Discord refused the gateway intents this bot asks for: check the bot's "
                               "settings in the Developer Portal.", ExitCode.TOKEN_REFUSED) from None
        except discord.ConnectionClosed as exc:
            if exc.code == _AUTHENTICATION_FAILED:
                raise _token_refused() from None
            raise

    async def _resume(self, left: list[InboxEntry], started: float) -> None:
        """Once connected, finish what the last run could not (a restart loses nothing): handle the
        interactions it committed (`left`), send the first messages still missing (of jobs created
        before `started`: later ones are their handlers' own), then the final edits."""
        await self.client.ready.wait()
        await self.inbox.replay(left)
        self._adopted_since = started  # jobs created since have their handlers' own first messages
        await self.app.worker.adopt(PLATFORM, self._adopt)

    async def _adopt(self, channels: list[str]) -> None:
        """Show what is pending in `channels` (this worker's from now on): at start, what the last run
        left behind; later, the channels of a worker that died."""
        wanted = set(channels)
        await self.client.handlers.send_unreplied(self._adopted_since, wanted)
        self._adopted_since = self.clock()  # a dead worker's jobs: any created before the takeover
        if count := await self.outbox.messages.adopt(wanted, unreplied=False):  # sent just above
            log.info("discord: showing %d job(s) left from the last run", count)

    async def _drain(self) -> None:
        """Let the interactions being handled finish, then pending edits (a final grid, most of all)
        go out before the connection closes; what does not make it in time is handled after the next
        start (an interaction left pending in the inbox, an edit not recorded as delivered)."""
        if not self.client.is_closed():  # flush() also waits for a send already in flight
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.drain_timeout):
                    await self.inbox.idle()
                    await self.outbox.delivery.flush()
