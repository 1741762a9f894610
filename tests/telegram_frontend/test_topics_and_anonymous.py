"""Group situations beyond a person typing in a plain group: forum topics, anonymous administrators
(messages sent as the group itself), members posting as a channel, and messages without `from`.

What is asserted is what people in the chat see: which topic each of the bot's messages is in, who a
job belongs to (the store), and the answers to commands and button presses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import telegram.error
from telegram import ReplyParameters

from bot.domain import Owner
from bot.telegram_frontend.admin_commands import REFUSAL
from bot.telegram_frontend.settings import SETTINGS_AS_CHAT
from tests.fakes.telegram_api import ANONYMOUS_ADMIN, CHANNEL_SENDER, FakeMessage, FakeUser
from tests.telegram_frontend.conftest import ANN, BOB, GROUP, Bot, BotFactory, labels

FORUM = -1009876543210
CHANNEL = -1001111111111
GRID_ROWS = [["U1", "U2", "U3", "U4"], ["V1", "V2", "V3", "V4", "🔄"]]
WENT_WRONG = "Something went wrong"


@pytest.fixture
async def forum_bot(make_bot: BotFactory) -> AsyncIterator[Bot]:
    """The bot in a forum supergroup, with 1400 px grids (so upscales also come as documents)."""
    async with make_bot(local={"grid_size": 1400}) as running_bot:
        running_bot.fake.open_chat(FORUM, "supergroup", title="Studio", is_forum=True)
        yield running_bot


def in_topic(bot: Bot, thread: int | None) -> list[FakeMessage]:
    return [m for m in bot.fake.bot_messages(FORUM) if m.message_thread_id == thread]


def no_bad_requests(bot: Bot) -> None:
    assert [e for e in bot.fake.errors if e[1] == 400] == []


# -- forum topics ---------------------------------------------------------------------------------


async def test_imagine_in_a_topic_gets_reply_progress_grid_and_upscale_in_that_topic(forum_bot: Bot) -> None:
    bot, fake = forum_bot, forum_bot.fake
    art = fake.open_topic(FORUM, BOB, "Art")
    fake.open_topic(FORUM, BOB, "Chatter")
    command = fake.send_text(FORUM, ANN, "/imagine a red fox in snow", thread=art)
    reply = await bot.reply(FORUM, command.message_id)
    assert reply.message_thread_id == art
    grid = await bot.finished(FORUM, reply.message_id)
    assert labels(grid) == GRID_ROWS and grid.message_thread_id == art
    job = await bot.job(FORUM, grid)
    assert job.placement is not None and job.placement.thread_id == str(art)

    query = fake.press(FORUM, grid.message_id, ANN, text="U2")
    upscale_reply = await bot.reply(FORUM, grid.message_id)
    assert fake.answered(query) == {"text": "Upscaling U2…"}
    upscale = await bot.finished(FORUM, upscale_reply.message_id)
    document = await fake.wait_until(
        lambda: [m for m in bot.replies(FORUM, upscale.message_id) if m.document])
    await bot.settled()

    assert upscale.message_thread_id == art and document[0].message_thread_id == art
    assert in_topic(bot, art) == fake.bot_messages(FORUM)  # nothing in General or in Chatter
    child = await bot.job(FORUM, upscale)
    assert child.parent_id == job.id and child.placement and child.placement.thread_id == str(art)
    sends = [p for m, p in fake.log if m.startswith("send") and p.get("chat_id") == FORUM]
    # named explicitly, not only implied by the reply: a deleted reply target would send it to General
    assert [p.get("message_thread_id") for p in sends] == [art] * len(sends)
    no_bad_requests(bot)


async def test_a_command_deleted_at_once_still_gets_its_answer_in_its_topic(forum_bot: Bot) -> None:
    """Some groups delete commands as soon as they are sent: the reply then has nothing to reply to."""
    bot, fake = forum_bot, forum_bot.fake
    art = fake.open_topic(FORUM, BOB, "Art")
    command = fake.send_text(FORUM, ANN, "/imagine a quiet harbour", thread=art)
    usage = fake.send_text(FORUM, ANN, "/imagine", thread=art)
    fake.delete(FORUM, command.message_id)
    fake.delete(FORUM, usage.message_id)
    shown = await fake.wait_until(lambda: len(in_topic(bot, art)) == 2 and in_topic(bot, art))
    assert in_topic(bot, None) == []
    photo = next(m for m in shown if m.photo)
    assert labels(await bot.finished(FORUM, photo.message_id)) == GRID_ROWS
    assert any((m.text or "").startswith("Usage: /imagine") for m in shown)


async def test_imagine_in_general_stays_in_general(forum_bot: Bot) -> None:
    bot, fake = forum_bot, forum_bot.fake
    fake.open_topic(FORUM, BOB, "Art")
    command = fake.send_text(FORUM, ANN, "/imagine a lighthouse")
    grid = await bot.finished(FORUM, (await bot.reply(FORUM, command.message_id)).message_id)
    assert grid.message_thread_id is None
    assert (await bot.job(FORUM, grid)).placement.thread_id is None  # type: ignore[union-attr]
    no_bad_requests(bot)


async def test_commands_in_a_topic_ignore_the_topic_service_message(forum_bot: Bot) -> None:
    """Telegram makes every topic message a reply to the topic's "created" message (by whoever opened
    the topic): it is not what the user replied to."""
    bot, fake = forum_bot, forum_bot.fake
    fake.make_admin(FORUM, ANN)
    art = fake.open_topic(FORUM, BOB, "Art")
    ban = fake.send_text(FORUM, ANN, "/admin ban 777 spam", thread=art)
    assert (await bot.reply(FORUM, ban.message_id)).text == (
        "Banned 777 in this chat (spam). /admin unban lifts it.")
    cancel = fake.send_text(FORUM, ANN, "/cancel", thread=art)
    assert (await bot.reply(FORUM, cancel.message_id)).text == (
        "Reply /cancel to a job's message, or send /cancel <job id>.")
    describe = fake.send_text(FORUM, ANN, "/describe", thread=art)
    assert (await bot.reply(FORUM, describe.message_id)).text == (
        "Send a photo with /describe as its caption, or reply /describe to a photo.")

    bob = fake.send_text(FORUM, BOB, "/imagine still allowed", thread=art)  # the topic's creator: not banned
    grid = await bot.finished(FORUM, (await bot.reply(FORUM, bob.message_id)).message_id)
    assert (await bot.job(FORUM, grid)).owner.user_id == str(BOB.id)
    listing = fake.send_text(FORUM, ANN, "/admin bans", thread=art)
    assert (await bot.reply(FORUM, listing.message_id)).text == "Banned:\n• telegram:777 — spam"
    assert in_topic(bot, art) == fake.bot_messages(FORUM)


async def test_someone_elses_button_in_a_topic_is_refused_politely(forum_bot: Bot) -> None:
    bot, fake = forum_bot, forum_bot.fake
    art = fake.open_topic(FORUM, ANN, "Art")
    command = fake.send_text(FORUM, ANN, "/imagine a lantern", thread=art)
    grid = await bot.finished(FORUM, (await bot.reply(FORUM, command.message_id)).message_id)
    query = fake.press(FORUM, grid.message_id, BOB, text="V1")
    await fake.wait_until(lambda: fake.answered(query))
    assert fake.answered(query) == {
        "text": "These buttons belong to Ann. Start your own with /imagine.", "show_alert": True}
    await bot.settled()
    assert bot.replies(FORUM, grid.message_id) == []
    assert [j.owner.user_id for j in await bot.app.service.recent(_owner(BOB), 10)] == []


# -- anonymous administrators and channels ------------------------------------------------------------


async def test_an_anonymous_admin_is_an_admin(bot: Bot) -> None:
    """Sent as the group itself, which only its administrators can do: /admin works for them."""
    fake = bot.fake
    limits = fake.send_text(GROUP, ANONYMOUS_ADMIN, "/admin limits", as_chat=GROUP)
    assert ((await bot.reply(GROUP, limits.message_id)).text or "").startswith("Limits here")
    bans = fake.send_text(GROUP, ANONYMOUS_ADMIN, "/admin bans", as_chat=GROUP)
    assert (await bot.reply(GROUP, bans.message_id)).text == "Nobody is banned here."

    fake.open_chat(CHANNEL, "channel", title="Fox News")  # a member posting as their channel is not
    as_channel = fake.send_text(GROUP, CHANNEL_SENDER, "/admin bans", as_chat=CHANNEL)
    assert (await bot.reply(GROUP, as_channel.message_id)).text == REFUSAL
    assert fake.calls("getChatAdministrators") != []  # the channel was checked against the admin list


async def test_an_anonymous_admins_job_belongs_to_the_group_and_its_admins(bot: Bot) -> None:
    fake = bot.fake
    fake.make_admin(GROUP, ANN)
    command = fake.send_text(GROUP, ANONYMOUS_ADMIN, "/imagine a banner for the group", as_chat=GROUP)
    grid = await bot.finished(GROUP, (await bot.reply(GROUP, command.message_id)).message_id)
    job = await bot.job(GROUP, grid)
    assert (job.owner.user_id, job.owner.name) == (str(GROUP), "Artists")  # not GroupAnonymousBot
    assert grid.caption and grid.caption.endswith(f"local · Artists · job {job.id}")

    refused = fake.press(GROUP, grid.message_id, BOB, text="U1")  # a member, not an admin
    await fake.wait_until(lambda: fake.answered(refused))
    assert fake.answered(refused) == {
        "text": "These buttons belong to Artists. Start your own with /imagine.", "show_alert": True}
    pressed = fake.press(GROUP, grid.message_id, ANN, text="U1")  # an admin, pressing as herself
    upscale = await bot.finished(GROUP, (await bot.reply(GROUP, grid.message_id)).message_id)
    assert fake.answered(pressed) == {"text": "Upscaling U1…"}
    child = await bot.job(GROUP, upscale)
    assert (child.parent_id, child.owner.user_id) == (job.id, str(ANN.id))

    jobs = fake.send_text(GROUP, ANONYMOUS_ADMIN, "/jobs", as_chat=GROUP)
    assert f"• {job.id} · imagine" in ((await bot.reply(GROUP, jobs.message_id)).text or "")
    settings = fake.send_text(GROUP, ANONYMOUS_ADMIN, "/settings", as_chat=GROUP)
    assert (await bot.reply(GROUP, settings.message_id)).text == SETTINGS_AS_CHAT
    assert await bot.app.service.recent(_owner(ANONYMOUS_ADMIN), 10) == []


async def test_banning_a_member_who_posts_as_a_channel_bans_that_channel(bot: Bot) -> None:
    fake = bot.fake
    fake.make_admin(GROUP, ANN)
    fake.open_chat(CHANNEL, "channel", title="Fox News")
    post = fake.send_text(GROUP, CHANNEL_SENDER, "/imagine breaking news", as_chat=CHANNEL)
    grid = await bot.finished(GROUP, (await bot.reply(GROUP, post.message_id)).message_id)
    owner = (await bot.job(GROUP, grid)).owner
    assert owner == Owner(platform="telegram", user_id=str(CHANNEL), name="Fox News")

    ban = fake.send_text(GROUP, ANN, "/admin ban flooding", reply_to=post.message_id)
    assert (await bot.reply(GROUP, ban.message_id)).text == (
        "Banned Fox News in this chat (flooding). /admin unban lifts it.")
    again = fake.send_text(GROUP, CHANNEL_SENDER, "/imagine more news", as_chat=CHANNEL)
    assert "You are banned" in ((await bot.reply(GROUP, again.message_id)).text or "")
    anonymous = fake.send_text(GROUP, ANN, "/admin ban", reply_to=fake.send_text(
        GROUP, ANONYMOUS_ADMIN, "hello", as_chat=GROUP).message_id)  # fmt: skip
    assert (await bot.reply(GROUP, anonymous.message_id)).text == (
        "⚠️ That message is from an anonymous admin of this chat; admins can't be banned.")
    listing = fake.send_text(GROUP, ANN, "/admin bans")
    assert (await bot.reply(GROUP, listing.message_id)).text == f"Banned:\n• telegram:{CHANNEL} — flooding"


# -- messages without `from` ------------------------------------------------------------------------

COMMANDS = ["/imagine a cat", "/imagine", "/describe", "/blend", "/jobs", "/cancel", "/settings", "/info",
            "/admin bans", "/help"]  # fmt: skip


async def test_messages_without_from_never_fail(bot: Bot) -> None:
    """No sender at all (as channels have): ignored quietly. Sent as a chat with no `from`: answered."""
    fake = bot.fake
    fake.open_chat(CHANNEL, "channel", title="Fox News")
    nobody = [fake.send_text(GROUP, None, text) for text in COMMANDS]
    as_channel = [fake.send_text(GROUP, None, text, as_chat=CHANNEL) for text in COMMANDS]
    last = fake.send_text(GROUP, ANN, "/help")
    await bot.reply(GROUP, last.message_id)
    await fake.wait_until(lambda: all(bot.replies(GROUP, m.message_id) for m in as_channel), 15.0)
    await bot.settled()

    answers = [m for sent in nobody + as_channel for m in bot.replies(GROUP, sent.message_id)]
    assert not [m for m in answers if WENT_WRONG in (m.text or m.caption or "")]
    assert all(bot.replies(GROUP, m.message_id) == [] for m in nobody[:-1])  # /help is answered
    grid = await bot.finished(GROUP, (await bot.reply(GROUP, as_channel[0].message_id)).message_id)
    assert (await bot.job(GROUP, grid)).owner.user_id == str(CHANNEL)
    assert bot.frontend.handlers.errors == 0


def _owner(user: FakeUser) -> Owner:
    return Owner(platform="telegram", user_id=str(user.id))


async def test_the_fake_places_messages_in_topics_as_telegram_does(forum_bot: Bot) -> None:
    """The rules the tests above rely on: an explicit topic, else the replied message's, else General;
    a topic that doesn't exist (or a chat that has none) is refused."""
    bot, fake = forum_bot, forum_bot.fake
    api = bot.frontend.application.bot  # called directly, so outside the bot's pacing
    fake.flood_control = False
    art, chatter = fake.open_topic(FORUM, BOB, "Art"), fake.open_topic(FORUM, BOB, "Chatter")
    question = fake.send_text(FORUM, ANN, "hello", thread=art)
    inherited = await api.send_message(FORUM, "reply", reply_parameters=ReplyParameters(question.message_id))
    general = await api.send_message(FORUM, "to everyone")
    unreplied = ReplyParameters(question.message_id, allow_sending_without_reply=True)
    elsewhere = await api.send_message(FORUM, "moved", message_thread_id=chatter, reply_parameters=unreplied)
    assert (inherited.message_thread_id, inherited.is_topic_message) == (art, True)
    assert (general.message_thread_id, general.reply_to_message) == (None, None)
    # a message of another topic can't be replied to: it is sent unreplied, into its own topic
    assert elsewhere.message_thread_id == chatter and elsewhere.reply_to_message is not None
    assert elsewhere.reply_to_message.message_id == chatter  # the topic's service message, as Telegram has it
    for chat, thread in ((FORUM, 999), (GROUP, art), (ANN.id, art)):
        with pytest.raises(telegram.error.BadRequest, match="thread not found"):
            await api.send_message(chat, "lost", message_thread_id=thread)


# -- a linked channel's posts in its discussion group ------------------------------------------------


async def test_a_channel_post_copied_into_the_discussion_group_is_not_a_command(bot: Bot) -> None:
    """Telegram copies every post of a group's linked channel into the group. A post that happens to
    start with /imagine was written for the channel's readers, not to the bot: no job, no answer.
    A member's comment replying to it is an ordinary command."""
    fake = bot.fake
    fake.open_chat(CHANNEL, "channel", title="Fox News")
    post = fake.post_in_linked_channel(GROUP, CHANNEL, "/imagine a fox reading the news")
    comment = fake.send_text(GROUP, ANN, "/imagine a fox in a newsroom", reply_to=post.message_id)
    grid = await bot.finished(GROUP, (await bot.reply(GROUP, comment.message_id)).message_id)
    await bot.settled()

    assert (await bot.job(GROUP, grid)).owner.user_id == str(ANN.id)
    assert bot.replies(GROUP, post.message_id) == []
    prompts = [job.request.prompt.text for job in await bot.app.service.recent() if job.request.prompt]
    assert prompts == ["a fox in a newsroom"]
