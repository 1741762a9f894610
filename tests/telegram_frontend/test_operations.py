"""Community controls in a Telegram chat: limits, banned words, chat admins, /admin, /info, metrics,
and nothing lost across a restart (a final edit cut off by the shutdown, queue positions)."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from bot.access import Caller
from bot.domain import JobState, Owner
from tests.fakes.telegram_api import FakeUser, TelegramFake
from tests.telegram_frontend.conftest import ANN, BOB, GROUP, Bot, BotFactory, labels, make_config, serving

CAROL = FakeUser(44, "Carol")
BANNED = "⚠️ You are banned here (flooding the chat). Ask an admin if you think this is wrong."


async def say(bot: Bot, chat_id: int, user: FakeUser, text: str, reply_to: int | None = None) -> str:
    """What the bot answers to `text` (its reply's text or caption)."""
    sent = bot.fake.send_text(chat_id, user, text, reply_to=reply_to)
    reply = await bot.reply(chat_id, sent.message_id)
    return reply.text or reply.caption or ""


async def grid(bot: Bot, chat_id: int, user: FakeUser, prompt: str) -> int:
    """Imagine `prompt` and wait for the grid; returns the job message's id."""
    command = bot.fake.send_text(chat_id, user, f"/imagine {prompt}")
    reply = await bot.reply(chat_id, command.message_id)
    await bot.finished(chat_id, reply.message_id)
    return reply.message_id


async def jobs_of(bot: Bot, user: FakeUser) -> list[str]:
    owner = Owner(platform="telegram", user_id=str(user.id))
    return [job.request.prompt.text for job in await bot.app.service.recent(owner)
            if job.request.prompt is not None]  # fmt: skip


async def test_a_user_at_the_limit_is_told_when_the_next_job_frees_up(make_bot: BotFactory) -> None:
    async with make_bot(limits={"user_per_hour": 1}) as bot:
        await grid(bot, GROUP, ANN, "first fox")
        answer = await say(bot, GROUP, ANN, "/imagine second fox")
        assert answer.startswith("⚠️ You have used 1 of 1 jobs this hour; the next one frees up in ")
        assert await jobs_of(bot, ANN) == ["first fox"]  # nothing created, nothing charged
        info = await say(bot, GROUP, ANN, "/info")
        assert "Your usage: 1 of 1 jobs this hour (0 left)" in info


async def test_a_banned_word_is_refused_before_anything_is_spent(make_bot: BotFactory) -> None:
    async with make_bot(moderation={"banned_words": ["gore"]}) as bot:
        answer = await say(bot, ANN.id, ANN, "/imagine a scene full of GORE")
        assert answer == "⚠️ Your prompt was not sent: “GORE” is not allowed here. Remove it and try again."
        assert await say(bot, ANN.id, ANN, "gore, but as a private message") == answer.replace("GORE", "gore")
        assert (await say(bot, ANN.id, ANN, "/imagine gorevale castle")).startswith("gorevale castle\n")
        assert await jobs_of(bot, ANN) == ["gorevale castle"]  # whole words only


async def test_a_chat_administrator_is_exempt_from_limits_in_their_chat(make_bot: BotFactory) -> None:
    async with make_bot(limits={"user_per_hour": 1}) as bot:
        bot.fake.make_admin(GROUP, ANN)
        for n in (1, 2):
            await grid(bot, GROUP, ANN, f"admin castle {n}")
        assert await say(bot, GROUP, ANN, "/info") == "\n".join([
            "Providers:", "• local (local): available · 0 queued · 0 running", "",
            "You are an admin here: no limits apply to you."])  # fmt: skip
        await grid(bot, GROUP, BOB, "member castle")
        assert (await say(bot, GROUP, BOB, "/imagine another")).startswith("⚠️ You have used 1 of 1 jobs")
        # buttons too: Ann's U1 is free for her, in her group
        message = bot.fake.bot_messages(GROUP)[0]
        bot.fake.press(GROUP, message.message_id, ANN, text="U1")
        child = await bot.reply(GROUP, message.message_id)
        assert (await bot.job(GROUP, child)).index == 1
        assert len(await jobs_of(bot, ANN)) == 3
        assert len(bot.fake.calls("getChatAdministrators")) == 1  # asked once, then cached


async def test_info_shows_providers_and_the_users_usage(make_bot: BotFactory) -> None:
    async with make_bot(limits={"user_per_hour": 5, "user_per_day": 20, "chat_per_day": 100}) as bot:
        await grid(bot, GROUP, ANN, "a lighthouse")
        assert await say(bot, GROUP, ANN, "/info") == "\n".join([
            "Providers:",
            "• local (local): available · 0 queued · 0 running",
            "",
            "Your usage: 1 of 5 jobs this hour (4 left); 1 of 20 jobs today (19 left); 0 running.",
            "This chat: 1 jobs this hour (no limit); 1 of 100 jobs today (99 left).",
        ])  # fmt: skip
        private = (await say(bot, BOB.id, BOB, "/info")).splitlines()
        assert private[3] == ("Your usage: 0 of 5 jobs this hour (5 left); 0 of 20 jobs today (20 left); "
                              "0 running.")


async def test_admin_commands_are_refused_to_members(bot: Bot) -> None:
    refusal = "Sorry, /admin is only for the administrators of this chat."
    for command in ("/admin", "/admin ban 42", "/admin stats", "/admin pause local"):
        assert await say(bot, GROUP, BOB, command) == refusal
    message = await grid(bot, GROUP, ANN, "a quiet harbour")
    assert await say(bot, GROUP, BOB, "/admin ban", reply_to=message) == refusal
    assert await bot.app.admin.bans(Caller(Owner(platform="cli", user_id="test"), operator=True)) == []
    assert await say(bot, BOB.id, BOB, "/admin bans") == refusal  # a private chat makes nobody an admin


async def test_an_admin_bans_a_member_by_replying_to_them(make_bot: BotFactory) -> None:
    async with make_bot() as bot:
        fake = bot.fake
        fake.make_admin(GROUP, ANN, "creator")
        earlier = await grid(bot, GROUP, BOB, "bob's tower")
        spam = fake.send_text(GROUP, BOB, "/imagine spam spam spam")
        await bot.reply(GROUP, spam.message_id)
        assert await say(bot, GROUP, ANN, "/admin ban flooding the chat", reply_to=spam.message_id) == (
            "Banned Bob in this chat (flooding the chat). /admin unban lifts it.")

        assert await say(bot, GROUP, BOB, "/imagine once more") == BANNED
        press = fake.press(GROUP, earlier, BOB, text="V2")  # his old buttons too: told him alone
        refused = await fake.wait_until(lambda: fake.answered(press))
        assert refused == {"text": BANNED.removeprefix("⚠️ "), "show_alert": True}
        bans = await say(bot, GROUP, ANN, "/admin bans")
        assert bans == f"Banned:\n• telegram:{BOB.id} — flooding the chat"
        assert (await say(bot, BOB.id, BOB, "/imagine in private")).startswith("in private\n")  # only there

        # replying to one of the bot's job messages names the person who asked for it
        assert await say(bot, GROUP, ANN, "/admin unban", reply_to=earlier) == "Unbanned Bob."
        assert (await say(bot, GROUP, BOB, "/imagine welcome back")).startswith("welcome back\n")
        again = await say(bot, GROUP, ANN, f"/admin unban {BOB.id}")
        assert again == f"{BOB.id} was not banned in this chat."
        assert await say(bot, GROUP, ANN, "/admin ban") == (
            "⚠️ Whom? Reply to one of their messages, or give their user id.")


async def test_admin_limits_stats_and_operator_only_pauses(make_bot: BotFactory) -> None:
    async with make_bot(admins={"users": [str(CAROL.id)]}) as bot:
        bot.fake.make_admin(GROUP, ANN)
        answer = await say(bot, GROUP, ANN, "/admin setlimit user_per_hour 1")
        assert answer == "user_per_hour is now 1 in this chat."
        assert "• user_per_hour: 1\n" in await say(bot, GROUP, ANN, "/admin limits")
        await grid(bot, GROUP, BOB, "a small boat")
        assert (await say(bot, GROUP, BOB, "/imagine a second boat")).startswith("⚠️ You have used 1 of 1")
        stats = (await say(bot, GROUP, ANN, "/admin stats 1h")).splitlines()
        assert stats[0] == "Last 1h:" and stats[2].split() == ["local", "1", "1", "0", "0", "0", "1"]
        assert await say(bot, GROUP, ANN, "/admin stats soon") == (
            "⚠️ 'soon' is not a period; write e.g. 30m, 24h, 7d or 2w.")

        assert await say(bot, GROUP, ANN, "/admin pause local") == "⚠️ Only the bot's operators can do that."
        assert (await say(bot, CAROL.id, CAROL, "/admin pause local")).startswith("Paused local:")
        answer = await say(bot, GROUP, ANN, "/imagine while paused")
        assert answer == "⚠️ Provider 'local' is paused by an admin."
        assert await say(bot, CAROL.id, CAROL, "/admin resume local") == "Resumed local."
        assert (await say(bot, GROUP, ANN, "/imagine resumed")).startswith("resumed\n")


async def test_metrics_count_the_edits_sent_and_health_sees_the_frontend(bot: Bot) -> None:
    await grid(bot, GROUP, ANN, "a metered meadow")
    await bot.settled()
    fake = bot.fake
    edits = [m for m, _ in fake.log if m.startswith("editMessage")]
    refused = [e for e in fake.errors if e[0].startswith("editMessage")]
    assert len(edits) >= 2 and not refused  # progress and the final grid
    samples = {(s.name, s.labels.get("outcome")): s.value
               for family in text_string_to_metric_families(bot.app.metrics.render().decode())
               for s in family.samples if s.labels.get("platform") == "telegram"}  # fmt: skip
    posts = [m for m, _ in fake.log if m == "sendPhoto"]  # the job's first message goes the same way
    assert samples[("imagine_platform_edits_total", "sent")] == len(edits) + len(posts) == len(edits) + 1
    assert samples[("imagine_platform_edits_total", "retried")] == 0
    assert samples[("imagine_platform_rate_limited_total", None)] == 0
    healthy, report = await bot.app.health.report()
    assert healthy and report["frontends"] == {"telegram": True}


async def test_a_final_edit_pending_at_shutdown_reaches_the_chat_after_the_next_start(
        tmp_path: Path, fake: TelegramFake) -> None:  # fmt: skip
    config = make_config(tmp_path, fake)
    async with serving(config, fake, shutdown_flush=0.1) as first:
        fake.inject_429(retry_after=500, method="editMessageMedia")  # the chat is closed for 10 s (scaled)
        command = fake.send_text(ANN.id, ANN, "/imagine cut off by the shutdown")
        reply = await first.reply(ANN.id, command.message_id)
        job = await first.ended((await first.job(ANN.id, reply)).id)
        await fake.wait_until(lambda: fake.rate_limited)
        assert first.frontend.outbox.delivery.pending == 1  # the final waits for the chat to open again
    assert job.state is JobState.SUCCEEDED
    assert fake.message(ANN.id, reply.message_id).keyboard == []  # the chat never saw the result

    async with serving(config, fake) as second:
        shown = await second.finished(ANN.id, reply.message_id)
        assert labels(shown)[0] == ["U1", "U2", "U3", "U4"] and shown.caption
        assert shown.caption.startswith("cut off by the shutdown\nlocal · Ann · job ")
        await second.settled()
        assert await second.app.service.undelivered("telegram") == []  # recorded as delivered now
    async with serving(config, fake) as third:  # and not sent a third time
        await third.settled()
        assert third.frontend.outbox.delivery.stats.pushed == 0


async def test_queued_messages_move_up_when_a_job_ahead_leaves_the_queue(make_bot: BotFactory) -> None:
    async with make_bot(local={"duration": 30.0, "max_concurrency": 1}) as bot:
        fake = bot.fake
        people = [FakeUser(2000 + n, f"Painter {n}") for n in range(4)]
        messages = []
        for n, person in enumerate(people):  # one after the other: the queue order is the command order
            command = fake.send_text(GROUP, person, f"/imagine painting {n}")
            messages.append((await bot.reply(GROUP, command.message_id)).message_id)
        running, first, second, third = messages
        await bot.until(GROUP, running, lambda m: "Running ·" in (m.caption or ""))
        await bot.settled()
        status = [(fake.message(GROUP, m).caption or "").splitlines()[1] for m in (first, second, third)]
        assert status == ["Starting…", "Queued · position 2", "Queued · position 3"]

        assert (await say(bot, GROUP, people[1], "/cancel", reply_to=first)).startswith("Cancelled job ")
        await bot.until(GROUP, third, lambda m: "Queued · position 2" in (m.caption or ""))
        await bot.until(GROUP, second, lambda m: "Starting…" in (m.caption or ""))
        assert "Cancelled." in (fake.message(GROUP, first).caption or "")
