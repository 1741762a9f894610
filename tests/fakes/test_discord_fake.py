"""The Discord fake driven by the real discord.py client: gateway, commands, interactions, edits, limits."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import aiohttp
import pytest

with warnings.catch_warnings():  # discord.player imports the deprecated stdlib `audioop`
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord
    from discord import app_commands

from tests.fakes.discord_api import DiscordFake, find_buttons, point_discord_at

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
TEMPLATE = r"u:(?P<index>[1-4]):(?P<job>[a-z0-9]+)"


class Upscale(discord.ui.DynamicItem[discord.ui.Button[Any]], template=TEMPLATE):
    pressed: ClassVar[list[tuple[int, str, int]]] = []  # (index, job, user id), reset by the fixture

    def __init__(self, index: int, job: str) -> None:
        super().__init__(discord.ui.Button(label=f"U{index}", custom_id=f"u:{index}:{job}",
                                           style=discord.ButtonStyle.secondary, emoji="🔍"))
        self.index, self.job = index, job

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any],
                             match: re.Match[str]) -> Upscale:
        return cls(int(match["index"]), match["job"])

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        Upscale.pressed.append((self.index, self.job, interaction.user.id))
        await interaction.edit_original_response(content=f"upscaling U{self.index} of {self.job}")


def grid_view(job: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for index in range(1, 5):
        view.add_item(Upscale(index, job))
    return view


@dataclass
class Seen:
    prompt: str = ""
    image: bytes = b""
    size_limit: int = 0
    interactions: list[discord.Interaction] = field(default_factory=list)
    response_ids: list[int] = field(default_factory=list)
    errors: list[Exception] = field(default_factory=list)


class Bot(discord.Client):
    def __init__(self, fake: DiscordFake) -> None:
        super().__init__(intents=discord.Intents.default(), guild_ready_timeout=0.05)
        self.fake = fake
        self.tree = app_commands.CommandTree(self)
        self.seen = Seen()
        self.ready = asyncio.Event()
        guild = discord.Object(fake.guild_id)

        @self.tree.command(name="imagine", description="Generate an image", guild=guild)
        async def imagine(interaction: discord.Interaction, prompt: str, image: discord.Attachment) -> None:
            await interaction.response.defer(thinking=True)
            self.seen.prompt, self.seen.image = prompt, await image.read()
            self.seen.size_limit = interaction.filesize_limit
            self.seen.interactions.append(interaction)
            sent = await interaction.followup.send(f"**{prompt}** queued", wait=True)
            final = await interaction.edit_original_response(
                content=f"**{prompt}** done", attachments=[discord.File(io.BytesIO(PNG), "grid.png")],
                view=grid_view("job1"))
            self.seen.response_ids += [sent.id, final.id]

        @self.tree.command(name="describe", description="Describe an image", guild=guild)
        async def describe(interaction: discord.Interaction) -> None:
            await interaction.response.send_message(
                "four prompts", file=discord.File(io.BytesIO(PNG), "in.png"), view=grid_view("d1"))

        @self.tree.error
        async def on_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
            self.seen.errors.append(getattr(error, "original", error))

    async def setup_hook(self) -> None:
        self.add_dynamic_items(Upscale)

    async def on_ready(self) -> None:
        self.ready.set()


@pytest.fixture
async def fake() -> AsyncIterator[DiscordFake]:
    async with DiscordFake() as server:
        with point_discord_at(server):
            yield server


@pytest.fixture
async def bot(fake: DiscordFake) -> AsyncIterator[Bot]:
    Upscale.pressed = []
    client = Bot(fake)
    await client.login(fake.token)
    runner = asyncio.create_task(client.connect())
    await asyncio.wait_for(client.ready.wait(), 5)
    yield client
    await client.close()
    await asyncio.wait_for(runner, 5)


async def run_imagine(fake: DiscordFake, bot: Bot) -> discord.Message:
    await bot.tree.sync(guild=discord.Object(fake.guild_id))
    interaction = await fake.slash_command(fake.guild_id, fake.channel_id, fake.user, "imagine",
                                           {"prompt": "a red fox"}, {"image": ("fox.png", PNG, "image/png")})
    await fake.wait_for(lambda: len(bot.seen.response_ids) == 2)
    assert interaction.response_type == 5
    channel = bot.get_channel(fake.channel_id)
    assert isinstance(channel, discord.TextChannel)
    return await channel.fetch_message(bot.seen.response_ids[-1])


async def test_ready_resolves_the_guild_channel_and_the_bot_member(fake: DiscordFake, bot: Bot) -> None:
    channel = bot.get_channel(fake.channel_id)
    assert isinstance(channel, discord.TextChannel) and channel.name == "general"
    assert channel.guild.me is not None and channel.guild.me.id == fake.bot_user.id
    assert bot.user is not None and bot.user.id == fake.bot_user.id
    assert bot.application_id == fake.application_id
    assert ("GET", "/api/v10/oauth2/applications/@me") in fake.requests
    assert fake.violations == []


async def test_sync_records_guild_commands(fake: DiscordFake, bot: Bot) -> None:
    synced = await bot.tree.sync(guild=discord.Object(fake.guild_id))
    assert sorted(c.name for c in synced) == ["describe", "imagine"]
    command = next(c for c in fake.commands[fake.guild_id] if c["name"] == "imagine")
    assert command["name"] == "imagine" and [o["name"] for o in command["options"]] == ["prompt", "image"]
    assert [o["type"] for o in command["options"]] == [3, 11]
    with pytest.raises(LookupError):
        await fake.slash_command(fake.guild_id, fake.channel_id, fake.user, "blend", {})
    assert fake.violations == []


async def test_slash_command_defers_then_edits_with_file_and_buttons(fake: DiscordFake, bot: Bot) -> None:
    fetched = await run_imagine(fake, bot)
    assert (bot.seen.prompt, bot.seen.image, bot.seen.size_limit) == ("a red fox", PNG, 10 * 1024 * 1024)
    # the follow-up replaced the "thinking…" message, the edit changed that same message
    assert bot.seen.response_ids[0] == bot.seen.response_ids[1] == fetched.id
    (message,) = fake.messages(fake.channel_id)
    assert message.content == "**a red fox** done" and message.edit_count == 2
    assert [h["content"] for h in message.history] == ["", "**a red fox** queued"]
    (attachment,) = message.attachments
    assert (attachment.filename, attachment.data, attachment.content_type) == ("grid.png", PNG, "image/png")
    buttons = find_buttons(message)
    assert [(b.custom_id, b.label, b.emoji, b.row) for b in buttons] == [
        (f"u:{i}:job1", f"U{i}", "🔍", 0) for i in range(1, 5)]
    assert fetched.attachments[0].filename == "grid.png" and len(fetched.components) == 1
    # later edits go through the bot token, not the interaction token
    channel = bot.get_channel(fake.channel_id)
    assert isinstance(channel, discord.TextChannel)
    await channel.get_partial_message(message.id).edit(content="**a red fox** final", view=grid_view("job2"))
    assert message.content == "**a red fox** final" and message.edit_count == 3
    assert message.attachments[0].data == PNG  # kept: the edit did not mention attachments
    assert find_buttons(message)[0].custom_id == "u:1:job2"
    reply = await channel.send("variations", reference=channel.get_partial_message(message.id),
                               file=discord.File(io.BytesIO(b"jpeg"), "v.jpg"))
    recorded = fake.message(fake.channel_id, reply.id)
    assert recorded.reference == message.id and recorded.attachments[0].content_type == "image/jpeg"
    assert fake.violations == []


async def test_button_press_reaches_the_dynamic_item(fake: DiscordFake, bot: Bot) -> None:
    channel = bot.get_channel(fake.channel_id)
    assert isinstance(channel, discord.TextChannel)
    sent = await channel.send("grid", view=grid_view("abc123"))
    pressed = await fake.press(fake.channel_id, sent.id, fake.user, "u:3:abc123")
    await fake.wait_for(lambda: fake.message(fake.channel_id, sent.id).content.startswith("upscaling"))
    assert Upscale.pressed == [(3, "abc123", fake.user.id)]
    assert pressed.response_type == 6 and pressed.response_message_id == sent.id
    with pytest.raises(LookupError):
        await fake.press(fake.channel_id, sent.id, fake.user, "u:9:nope")
    assert fake.violations == []


async def test_an_enforced_nonce_returns_the_message_it_created(fake: DiscordFake, bot: Bot) -> None:
    channel = bot.get_channel(fake.channel_id)
    assert isinstance(channel, discord.TextChannel)
    first = await channel.send("job abc", nonce="abc", file=discord.File(io.BytesIO(PNG), "grid.png"))
    again = await channel.send("job abc, sent again", nonce="abc")
    assert again.id == first.id and again.content == "job abc" and again.nonce == "abc"
    other = await channel.send("job xyz", nonce="xyz")
    unnamed = [await channel.send("no nonce given"), await channel.send("no nonce given")]
    assert len({other.id, first.id, *(m.id for m in unnamed)}) == 4  # discord.py's random nonces differ
    assert [m.content for m in fake.messages(fake.channel_id)] == [
        "job abc", "job xyz", "no nonce given", "no nonce given"]
    fake.nonce_window = -1  # a nonce is unique for a few minutes only
    later = await channel.send("job abc, much later", nonce="abc")
    assert later.id != first.id and fake.violations == []


async def test_a_429_on_edit_is_retried_and_the_edit_lands(fake: DiscordFake, bot: Bot) -> None:
    channel = bot.get_channel(fake.channel_id)
    assert isinstance(channel, discord.TextChannel)
    sent = await channel.send("queued")
    fake.inject_429(times=1, retry_after=0.05)
    await channel.get_partial_message(sent.id).edit(content="50%")
    assert fake.sent_429 == 1 and fake.message(fake.channel_id, sent.id).content == "50%"


async def test_edit_bucket_headers_make_discord_py_wait_not_429(fake: DiscordFake, bot: Bot) -> None:
    fake.edit_limit = (2, 0.3)
    channel = bot.get_channel(fake.channel_id)
    assert isinstance(channel, discord.TextChannel)
    sent = await channel.send("queued")
    loop = asyncio.get_running_loop()
    started = loop.time()
    for percent in (10, 20, 30):
        await channel.get_partial_message(sent.id).edit(content=f"{percent}%")
    assert loop.time() - started >= 0.2 and fake.sent_429 == 0
    assert fake.message(fake.channel_id, sent.id).edit_count == 3


async def test_interaction_webhooks_have_a_bucket_per_token_outside_the_channel_and_global_limits(
        fake: DiscordFake, bot: Bot) -> None:
    fake.webhook_limit = (3, 60.0)
    await run_imagine(fake, bot)  # its handler made 2 calls on the token's webhook: a follow-up, an edit
    (first,) = fake.interactions.values()
    (message,) = fake.messages(fake.channel_id)
    fake.edit_limit = (0, 60.0)  # the channel takes no more bot-token edits
    fake.global_limit = (0, 60.0)  # nor the bot token anything at all
    api = f"{fake.base_url}/api/v10"
    original = f"{api}/webhooks/{fake.application_id}/{first.token}/messages/@original"
    auth = {"Authorization": f"Bot {fake.token}"}
    async with aiohttp.ClientSession() as http:
        async with http.patch(original, json={"content": "third"}) as response:  # the token's last one
            assert response.status == 200 and response.headers["X-RateLimit-Remaining"] == "0"
            assert response.headers["X-RateLimit-Bucket"] == "interaction-webhook"
        async with http.patch(original, json={"content": "fourth"}) as response:
            assert response.status == 429 and response.headers["Via"]
            assert (await response.json())["global"] is False
        fake.global_limit = None
        edit = f"{api}/channels/{fake.channel_id}/messages/{message.id}"
        async with http.patch(edit, json={"content": "bot token"}, headers=auth) as response:
            assert response.status == 429 and response.headers["X-RateLimit-Bucket"] == "channel-edit"
        fake.global_limit = (0, 60.0)
        async with http.get(f"{api}/users/@me", headers=auth) as response:
            assert response.status == 429 and response.headers["X-RateLimit-Global"] == "true"
            assert (await response.json())["global"] is True
    assert message.content == "third"
    assert dict(fake.limited) == {"interaction-webhook": 1, "channel-edit": 1, "global": 1}
    # another interaction has a bucket of its own, and its webhook calls are outside the global limit
    await fake.slash_command(fake.guild_id, fake.channel_id, fake.user, "imagine", {"prompt": "a hare"},
                             {"image": ("hare.png", PNG, "image/png")})
    await fake.wait_for(lambda: len(bot.seen.response_ids) == 4)
    assert fake.sent_429 == 3 and fake.violations == []
    fake.global_limit = None  # the fixture's clean-up may use the bot token


async def test_over_long_custom_id_is_rejected_and_recorded(fake: DiscordFake, bot: Bot) -> None:
    channel = bot.get_channel(fake.channel_id)
    assert isinstance(channel, discord.TextChannel)
    view = discord.ui.View()
    view.add_item(discord.ui.Button(label="x", custom_id="x" * 101))
    with pytest.raises(discord.HTTPException) as caught:
        await channel.send("grid", view=view)
    assert caught.value.status == 400 and caught.value.code == 50035
    assert fake.messages(fake.channel_id) == []
    (violation,) = fake.violations
    assert violation.kind == "limit" and "custom_id" in violation.detail


async def test_expired_interaction_token_answers_401(fake: DiscordFake, bot: Bot) -> None:
    await run_imagine(fake, bot)
    (interaction,) = bot.seen.interactions
    fake.token_lifetime = 0.2
    await asyncio.sleep(0.25)
    with pytest.raises(discord.HTTPException) as caught:
        await interaction.edit_original_response(content="too late")
    assert caught.value.status == 401 and caught.value.code == 50027
    assert [v.kind for v in fake.violations] == ["expired-token"]


async def test_unknown_route_and_bad_body_answer_like_discord(fake: DiscordFake) -> None:
    auth = {"Authorization": f"Bot {fake.token}"}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{fake.base_url}/api/v10/channels/1/nonsense", headers=auth) as response:
            assert response.status == 404 and response.headers["Content-Type"] == "application/json"
            assert await response.json() == {"message": "404: Not Found", "code": 0}
        url = f"{fake.base_url}/api/v10/channels/{fake.channel_id}/messages"
        async with http.post(url, headers=auth, json={"content": 5}) as response:
            assert response.status == 400 and (await response.json())["code"] == 50035
        async with http.post(url, headers=auth, json={"content": "x" * 2001}) as response:
            errors = (await response.json())["errors"]
            assert errors["content"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"
        buttons = [{"type": 2, "style": 1, "label": "b", "custom_id": f"b{i}"} for i in range(6)]
        rows = [{"type": 1, "components": [{**b, "custom_id": f"{r}{b['custom_id']}"} for b in buttons]}
                for r in range(6)]
        async with http.post(url, headers=auth, json={"content": "x", "components": rows}) as response:
            errors = (await response.json())["errors"]["components"]
            assert errors["_errors"][0]["message"] == "Must be 5 or fewer in length."
            assert set(errors["0"]["components"]) == {"_errors"}
        async with http.get(f"{fake.base_url}/api/v10/users/@me") as response:
            assert response.status == 401
    assert [v.kind for v in fake.violations] == ["unknown-route", "schema", "limit", "limit", "auth"]
    assert fake.messages(fake.channel_id) == []


async def test_send_message_with_a_file_answers_in_one_callback(fake: DiscordFake, bot: Bot) -> None:
    await bot.tree.sync(guild=discord.Object(fake.guild_id))
    interaction = await fake.slash_command(fake.guild_id, fake.channel_id, fake.user, "describe")
    message = await fake.wait_for(lambda: next(iter(fake.messages(fake.channel_id)), None))
    assert interaction.response_type == 4 and interaction.response_message_id == message.id
    assert message.type == 20 and message.interaction["name"] == "describe"
    assert message.attachments[0].data == PNG and len(find_buttons(message)) == 4
    assert bot.seen.errors == [] and fake.violations == []


async def test_a_late_callback_is_an_unknown_interaction(fake: DiscordFake, bot: Bot) -> None:
    await bot.tree.sync(guild=discord.Object(fake.guild_id))
    fake.ack_deadline = 0
    await fake.slash_command(fake.guild_id, fake.channel_id, fake.user, "describe")
    (error,) = await fake.wait_for(lambda: bot.seen.errors)
    assert isinstance(error, discord.NotFound) and error.code == 10062
    assert [v.kind for v in fake.violations] == ["late-ack"] and fake.messages(fake.channel_id) == []


async def test_upload_and_embed_limits(fake: DiscordFake, bot: Bot) -> None:
    channel = bot.get_channel(fake.channel_id)
    assert isinstance(channel, discord.TextChannel)
    fake.max_file_size = 100
    with pytest.raises(discord.HTTPException) as caught:
        await channel.send(file=discord.File(io.BytesIO(b"x" * 101), "big.png"))
    assert (caught.value.status, caught.value.code) == (413, 40005)
    with pytest.raises(discord.HTTPException) as caught:
        await channel.send(embed=discord.Embed(description="d" * 4097))
    assert "embeds.0.description" in caught.value.text
    with pytest.raises(discord.HTTPException) as caught:
        await channel.send(embeds=[discord.Embed(description="d" * 3001) for _ in range(2)])
    assert "Embed size exceeds maximum size of 6000" in caught.value.text
    assert [v.kind for v in fake.violations] == ["limit"] * 3 and fake.messages(fake.channel_id) == []


# ------------------------------------------------------------------------------------------- sharding
class Pinger(discord.Client):
    """A client with a global /ping. discord.py sleeps 5 s before every IDENTIFY but a client's first,
    whatever max_concurrency says; this one sleeps `identify_wait` instead."""

    def __init__(self, identify_wait: float = 0.0, **options: Any) -> None:
        super().__init__(intents=discord.Intents.default(), guild_ready_timeout=0.05, **options)
        self.identify_wait = identify_wait
        self.tree = app_commands.CommandTree(self)
        self.pinged: list[int | None] = []  # the guild (None: a DM) of every /ping
        self.ready = asyncio.Event()

        @self.tree.command(name="ping", description="Ping")
        async def ping(interaction: discord.Interaction) -> None:
            self.pinged.append(interaction.guild_id)
            await interaction.response.send_message("pong")

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        if not initial:
            await asyncio.sleep(self.identify_wait)

    async def on_ready(self) -> None:
        self.ready.set()


class ShardedPinger(Pinger, discord.AutoShardedClient):
    pass


@contextlib.asynccontextmanager
async def connected(fake: DiscordFake, *clients: Pinger) -> AsyncIterator[None]:
    """Connect `clients` at once, until every one of them is ready."""
    for client in clients:
        await client.login(fake.token)
    runners = [asyncio.create_task(client.connect()) for client in clients]
    try:
        await asyncio.wait_for(asyncio.gather(*(client.ready.wait() for client in clients)), 10)
        yield
    finally:
        for client, runner in zip(clients, runners, strict=True):
            await client.close()
            await asyncio.wait_for(runner, 5)


def sent(fake: DiscordFake, shard: tuple[int, int], event: str) -> list[int]:
    """The guild ids (0: none) of the `event` dispatches the fake sent the session of `shard`."""
    (session,) = [s for s in fake.sessions if s.shard == shard]
    key = "id" if event == "GUILD_CREATE" else "guild_id"
    return [int(d.get(key) or 0) for t, d in session.dispatched if t == event]


def owned(fake: DiscordFake, shard: tuple[int, int]) -> list[int]:
    return [g for g in fake.guilds if (g >> 22) % shard[1] == shard[0]]


@pytest.fixture
def two_shards(fake: DiscordFake) -> dict[int, tuple[int, int]]:
    """A guild (and its channel) on each of two shards: shard id -> (guild id, channel id)."""
    made = {i: fake.add_guild(f"Shard {i}", shard=(i, 2)) for i in (0, 1)}
    fake.identify_interval = 0.3
    return {i: (guild_id, channel_id) for i, (guild_id, (channel_id,)) in made.items()}


@pytest.mark.parametrize("max_concurrency", [1, 2])
async def test_an_auto_sharded_client_gets_each_shard_its_own_guilds(
        fake: DiscordFake, two_shards: dict[int, tuple[int, int]], max_concurrency: int) -> None:
    fake.max_concurrency = max_concurrency
    # one bucket: wait out its interval (as discord.py does, 5 s); two buckets: no need to wait at all
    client = ShardedPinger(shard_count=2, identify_wait=0.3 if max_concurrency == 1 else 0.0)
    async with connected(fake, client):
        assert fake.shards_connected() == [(0, 2), (1, 2)] and fake.identify_violations == []
        for shard in (0, 2), (1, 2):
            assert sent(fake, shard, "GUILD_CREATE") == owned(fake, shard)
        assert {g.id: g.shard_id for g in client.guilds} == {g: (g >> 22) % 2 for g in fake.guilds}
        assert {two_shards[0][0], two_shards[1][0]} <= {g.id for g in client.guilds}
        assert [(i.shard_id, i.shard_count) for i in fake.identifies] == [(0, 2), (1, 2)]
        if max_concurrency == 1:
            assert fake.identifies[1].at - fake.identifies[0].at >= 0.3
    assert fake.sessions == []


async def test_interactions_reach_the_shard_of_their_guild_and_dms_shard_0(
        fake: DiscordFake, two_shards: dict[int, tuple[int, int]]) -> None:
    fake.max_concurrency = 2
    client = ShardedPinger(shard_count=2)
    async with connected(fake, client):
        await client.tree.sync()
        guild_id, channel_id = two_shards[1]
        in_guild = await fake.slash_command(guild_id, channel_id, fake.user, "ping")
        await fake.wait_for(lambda: client.pinged == [guild_id])
        in_dm = await fake.slash_command(None, fake.dm_channel(fake.user), fake.user, "ping")
        await fake.wait_for(lambda: client.pinged == [guild_id, None])
        assert sent(fake, (1, 2), "INTERACTION_CREATE") == [guild_id]
        assert sent(fake, (0, 2), "INTERACTION_CREATE") == [0]
        assert in_guild.response_type == in_dm.response_type == 4
    assert fake.violations == [] and fake.identify_violations == []


@pytest.mark.parametrize("max_concurrency", [1, 2])
async def test_a_client_per_shard_gets_its_own_guilds(
        fake: DiscordFake, two_shards: dict[int, tuple[int, int]], max_concurrency: int) -> None:
    fake.max_concurrency, fake.identify_interval = max_concurrency, 1.0
    clients = [Pinger(shard_id=i, shard_count=2, identify_wait=1.0) for i in (0, 1)]
    async with connected(fake, *clients):  # both identify at once, each as its first IDENTIFY
        assert fake.shards_connected() == [(0, 2), (1, 2)]
        for i, client in enumerate(clients):
            assert sorted(g.id for g in client.guilds) == owned(fake, (i, 2))
            assert two_shards[i][0] in {g.id for g in client.guilds}
    # one bucket: the later one is answered Invalid Session, and identifies again after its wait
    (late,) = fake.identify_violations if max_concurrency == 1 else [None]
    assert len(fake.identifies) == 2 + (late is not None)
    if late is not None:
        again = next(i for i in fake.identifies[2:] if i.shard_id == late.shard_id)
        assert again.at - late.at >= 1.0


async def test_an_invalid_shard_closes_4010_and_too_few_shards_4011(fake: DiscordFake) -> None:
    client = Pinger(shard_id=2, shard_count=2)
    await client.login(fake.token)
    with pytest.raises(discord.ConnectionClosed) as caught:
        await asyncio.wait_for(client.connect(), 5)
    assert caught.value.code == 4010 and fake.sessions == []
    fake.required_shards = fake.shards = fake.max_concurrency = 2
    unsharded = Pinger()
    await unsharded.login(fake.token)
    with pytest.raises(discord.ConnectionClosed) as caught:
        await asyncio.wait_for(unsharded.connect(), 5)
    assert caught.value.code == 4011 and fake.sessions == []
    sharded = ShardedPinger()  # no shard_count: it takes the one GET /gateway/bot recommends
    async with connected(fake, sharded):
        assert sharded.shard_count == 2 and fake.shards_connected() == [(0, 2), (1, 2)]
    assert [(i.shard_id, i.shard_count) for i in fake.identifies] == [(2, 2), (0, 1), (0, 2), (1, 2)]
    assert fake.identify_violations == [] and ("GET", "/api/v10/gateway/bot") in fake.requests


async def test_a_too_fast_identify_is_answered_invalid_session(fake: DiscordFake) -> None:
    fake.max_concurrency = 2
    auth = {"Authorization": f"Bot {fake.token}"}
    async with aiohttp.ClientSession() as http, contextlib.AsyncExitStack() as stack:
        async with http.get(f"{fake.base_url}/api/v10/gateway/bot", headers=auth) as response:
            body = await response.json()
        assert (body["shards"], body["session_start_limit"]["max_concurrency"]) == (1, 2)

        async def identify(shard: list[int]) -> dict[str, Any]:
            ws = await stack.enter_async_context(http.ws_connect(fake.gateway_url))
            assert (await ws.receive_json())["op"] == 10
            await ws.send_json({"op": 2, "d": {"token": fake.token, "intents": 0, "shard": shard,
                                               "properties": {}}})
            answer: dict[str, Any] = await ws.receive_json(timeout=5)
            return answer

        assert (await identify([0, 4]))["t"] == "READY"
        assert (await identify([1, 4]))["t"] == "READY"  # another bucket: at once is fine
        assert await identify([2, 4]) == {"op": 9, "d": False}  # bucket 0 again, within 5 s
        assert fake.shards_connected() == [(0, 4), (1, 4)]
        assert fake.identify_violations == [fake.identifies[2]]
        fake.time_scale = 0  # the bucket's 5 s are over
        assert (await identify([2, 4]))["t"] == "READY"
        assert fake.shards_connected() == [(0, 4), (1, 4), (2, 4)] and len(fake.identify_violations) == 1
