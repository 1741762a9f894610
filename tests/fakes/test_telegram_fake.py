"""The Telegram fake, driven by the real python-telegram-bot `Bot` and `Application` over loopback."""

from __future__ import annotations

import asyncio
import datetime as dtm
import io
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import httpx
import pytest
from aiohttp import web
from PIL import Image
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Message,
    Update,
    WebAppInfo,
)
from telegram.error import BadRequest, Conflict, EndPointNotFound, RetryAfter
from telegram.ext import ApplicationBuilder, CallbackQueryHandler, CommandHandler, ContextTypes

from tests.fakes._server import HookReceiver
from tests.fakes.telegram_api import SECRET_HEADER, FakeUser, FloodLimits, TelegramFake

GROUP = -1001234567890
ANN = FakeUser(42, "Ann", "ann")
BOB = FakeUser(43, "Bob")


def image(width: int = 64, height: int = 48, color: str = "red", fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, fmt)
    return buf.getvalue()


def keyboard(*rows: list[tuple[str, str]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(t, callback_data=d) for t, d in row] for row in rows])


def make_bot(fake: TelegramFake) -> Bot:
    return Bot(fake.token, base_url=f"{fake.base_url}/bot", base_file_url=f"{fake.base_url}/file/bot")


@pytest.fixture
async def fake() -> AsyncIterator[TelegramFake]:
    async with TelegramFake(flood_control=False) as f:  # flood limits have their own test
        f.open_chat(GROUP, "supergroup", title="Artists")
        yield f
        assert f.violations == []


@pytest.fixture
async def bot(fake: TelegramFake) -> AsyncIterator[Bot]:
    async with make_bot(fake) as b:
        yield b


async def test_get_me_and_commands(fake: TelegramFake, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username, me.can_join_groups) == (123456789, True, "imagine_test_bot", True)
    assert me.can_read_all_group_messages is False  # privacy mode on
    await bot.set_my_commands([("imagine", "Generate images"), ("blend", "Blend 2-5 images")])
    commands = await bot.get_my_commands()
    assert [(c.command, c.description) for c in commands] == [
        ("imagine", "Generate images"),
        ("blend", "Blend 2-5 images"),
    ]
    with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
        await bot.set_my_commands([("Imagine!", "bad name")])
    assert await bot.delete_webhook() is True
    assert [p for p in fake.calls("getme")] == [{}, {}]  # initialize() + get_me()


async def test_send_and_edit_text(fake: TelegramFake, bot: Bot) -> None:
    sent = await bot.send_message(GROUP, "Queued: a red fox")
    assert sent.chat.type == "supergroup" and sent.from_user and sent.from_user.is_bot
    assert abs(sent.date.timestamp() - time.time()) < 5  # Unix seconds
    edited = await bot.edit_message_text("Generating… 40%", GROUP, sent.message_id)
    assert isinstance(edited, Message) and edited.text == "Generating… 40%" and edited.edit_date
    assert [m.text for m in fake.chat(GROUP)] == ["Generating… 40%"]

    with pytest.raises(BadRequest, match=r"(?i)message is not modified: specified new message content"):
        await bot.edit_message_text("Generating… 40%", GROUP, sent.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(GROUP, "x" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(777, "hello?")
    with pytest.raises(BadRequest, match=r"(?i)there is no caption"):
        await bot.edit_message_caption(GROUP, sent.message_id, caption="nope")

    html = await bot.send_message(GROUP, "<b>Done</b> &amp; dusted", parse_mode="HTML")
    assert fake.message(GROUP, html.message_id).text == "Done & dusted"

    assert await bot.delete_message(GROUP, sent.message_id) is True
    assert fake.message(GROUP, sent.message_id).deleted
    assert [m.message_id for m in fake.chat(GROUP)] == [html.message_id]
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("late", GROUP, sent.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(GROUP, sent.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("ghost", GROUP, 999)


async def test_photo_upload_download_then_edit_media(fake: TelegramFake, bot: Bot) -> None:
    first, final = image(color="red"), image(1600, 1200, "blue")
    kb = keyboard([("U1", "up:1"), ("U2", "up:2")])
    sent = await bot.send_photo(GROUP, first, caption="Generating… 0%", reply_markup=kb)
    stored = fake.message(GROUP, sent.message_id)
    assert fake.photo_bytes(stored) == first and stored.caption == "Generating… 0%"
    assert (sent.photo[-1].width, sent.photo[-1].height) == (64, 48)

    served = await (await bot.get_file(sent.photo[-1].file_id)).download_as_bytearray()
    assert Image.open(io.BytesIO(served)).size == (64, 48)  # Telegram serves it re-encoded as JPEG

    await bot.edit_message_caption(GROUP, sent.message_id, caption="Generating… 50%", reply_markup=kb)
    done = await bot.edit_message_media(
        InputMediaPhoto(final, caption="a red fox"), GROUP, sent.message_id, reply_markup=kb
    )
    assert isinstance(done, Message)  # edits return the edited Message
    assert done.caption == "a red fox" and done.reply_markup == kb
    assert max(done.photo[-1].width, done.photo[-1].height) == 1280  # Telegram shrinks photos
    assert fake.photo_bytes(stored) == final and stored.caption == "a red fox"
    media = fake.calls("editMessageMedia")[0]["media"]
    assert media["type"] == "photo" and media["media"].startswith("attach://")

    again = await bot.send_photo(GROUP, done.photo[-1].file_id)  # by file_id
    assert fake.photo_bytes(fake.message(GROUP, again.message_id)) == final
    doc = await bot.send_document(GROUP, final, filename="fox-full.png")
    assert doc.document and doc.document.file_name == "fox-full.png"
    assert fake.message(GROUP, doc.message_id).uploaded == final

    with pytest.raises(BadRequest, match=r"(?i)photo_invalid_dimensions"):
        await bot.send_photo(GROUP, image(9000, 1001, fmt="JPEG"))
    with pytest.raises(BadRequest, match=r"(?i)image_process_failed"):
        await bot.send_photo(GROUP, b"not an image at all")
    with pytest.raises(BadRequest, match=r"(?i)can't use file of type photo as document"):
        await bot.send_document(GROUP, done.photo[-1].file_id)


async def test_media_group(fake: TelegramFake, bot: Bot) -> None:
    album = await bot.send_media_group(
        GROUP,
        [InputMediaPhoto(image(color=c), caption="grid" if c == "red" else None) for c in ("red", "green")],
    )
    assert len(album) == 2 and album[0].media_group_id and album[0].media_group_id == album[1].media_group_id
    assert [m.caption for m in fake.chat(GROUP)] == ["grid", None]
    with pytest.raises(BadRequest, match=r"(?i)wrong number of media"):
        await bot.send_media_group(GROUP, [InputMediaPhoto(image())])


async def test_reply_markup_round_trip(fake: TelegramFake, bot: Bot) -> None:
    kb = keyboard([("U1", "up:1"), ("U2", "up:2")], [("🔄", "reroll")])
    sent = await bot.send_message(GROUP, "a red fox", reply_markup=kb)
    assert sent.reply_markup == kb
    assert fake.message(GROUP, sent.message_id).keyboard == [
        [("U1", "up:1"), ("U2", "up:2")],
        [("🔄", "reroll")],
    ]

    same = await bot.edit_message_reply_markup(
        GROUP, sent.message_id, reply_markup=keyboard([("U1", "up:1")])
    )
    assert isinstance(same, Message)
    assert same.reply_markup == keyboard([("U1", "up:1")])
    edited = await bot.edit_message_text("a red fox (done)", GROUP, sent.message_id)  # no reply_markup
    assert isinstance(edited, Message)
    assert edited.reply_markup is None and fake.message(GROUP, sent.message_id).keyboard == []
    with pytest.raises(BadRequest, match=r"(?i)not modified"):
        await bot.edit_message_reply_markup(GROUP, sent.message_id, reply_markup=None)


async def test_callback_data_is_limited_to_64_bytes(fake: TelegramFake, bot: Bot) -> None:
    await bot.send_message(GROUP, "ok", reply_markup=keyboard([("max", "x" * 64)]))
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await bot.send_message(GROUP, "too long", reply_markup=keyboard([("big", "x" * 65)]))
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):  # 33 characters but 66 bytes
        await bot.send_message(GROUP, "too long", reply_markup=keyboard([("big", "é" * 33)]))
    with pytest.raises(BadRequest, match=r"(?i)text buttons are unallowed"):
        await bot.send_message(
            GROUP, "plain", reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("x")]])
        )
    assert len(fake.chat(GROUP)) == 1  # refused sends leave nothing behind


async def test_web_app_buttons_need_https_and_a_private_chat(fake: TelegramFake, bot: Bot) -> None:
    fake.open_chat(ANN.id, "private", user=ANN)

    def app(url: str) -> InlineKeyboardMarkup:
        return InlineKeyboardMarkup([[InlineKeyboardButton("Open", web_app=WebAppInfo(url))]])

    sent = await bot.send_message(ANN.id, "pages", reply_markup=app("https://bot.example.com/app"))
    assert sent.reply_markup == app("https://bot.example.com/app")
    with pytest.raises(BadRequest, match=r"(?i)only https links are allowed"):
        await bot.send_message(ANN.id, "pages", reply_markup=app("http://bot.example.com/app"))
    with pytest.raises(BadRequest, match=r"(?i)button_type_invalid"):
        await bot.send_message(GROUP, "pages", reply_markup=app("https://bot.example.com/app"))
    assert len(fake.chat(GROUP)) == 0 and len(fake.chat(ANN.id)) == 1


async def test_flood_limits_and_forced_429(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")  # RetryAfter.retry_after as a timedelta, without a warning
    limits = FloodLimits(per_chat=(2, 1.0), per_group=(20, 60.0), overall=(30, 1.0))
    # real-time windows: the first two calls must fall inside one window even on a loaded machine
    async with TelegramFake(flood_limits=limits) as fake, make_bot(fake) as bot:
        fake.open_chat(7, "private", user=ANN)
        first = await bot.send_message(7, "one")
        await bot.edit_message_text("one, edited", 7, first.message_id)  # edits count too
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(7, "three")
        assert caught.value.retry_after == dtm.timedelta(seconds=1)
        await asyncio.sleep(1.05)  # the 1 s window has passed
        await bot.send_message(7, "three")

        fake.inject_429(times=1, retry_after=7)
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(7, "four")
        assert caught.value.retry_after == dtm.timedelta(seconds=7)
        assert [r for _, _, r in fake.rate_limited] == [1, 7]
        assert [m.text for m in fake.chat(7)] == ["one, edited", "three"]
        assert fake.violations == []


async def test_schema_violations_are_answered_and_recorded(fake: TelegramFake, bot: Bot) -> None:
    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("sendImagineGrid", api_kwargs={"chat_id": GROUP})
    url = f"{fake.base_url}/bot{fake.token}"
    async with httpx.AsyncClient() as http:
        missing = await http.post(f"{url}/sendMessage", data={"text": "no chat"})
        typed = await http.post(
            f"{url}/EDITMESSAGETEXT", json={"chat_id": GROUP, "message_id": "x", "text": "t"}
        )
        extra = await http.post(f"{url}/sendMessage", json={"chat_id": GROUP, "text": "hi", "colour": "red"})
        lost = await http.post(f"{url}/sendMessage", json={"chat_id": GROUP, "text": "hi", "reply_markup": 5})
    assert missing.status_code == 400 and missing.json() == {
        "ok": False,
        "error_code": 400,
        "description": 'Bad Request: parameter "chat_id" is required',
    }
    assert typed.status_code == 400 and "message_id" in typed.json()["description"]
    assert extra.json()["ok"] is True  # Telegram ignores unknown parameters; the fake still flags them
    assert lost.status_code == 400
    assert fake.violations == [
        "sendImagineGrid: unknown method",
        'sendMessage: parameter "chat_id" is required',
        'editMessageText: field "message_id" must be of type Integer',
        "sendMessage: unknown parameter 'colour' (Telegram ignores it)",
        'sendMessage: field "reply_markup" must be of type '
        "InlineKeyboardMarkup or ReplyKeyboardMarkup or ReplyKeyboardRemove or ForceReply",
    ]
    fake.violations.clear()


async def test_user_updates_are_shaped_like_telegram(fake: TelegramFake, bot: Bot) -> None:
    cmd = fake.send_text(GROUP, ANN, "/imagine@imagine_test_bot a red fox")
    other = fake.send_text(GROUP, BOB, "/imagine@some_other_bot hi")
    chatter = fake.send_text(GROUP, BOB, "nice pictures")
    assert (cmd.delivered, other.delivered, chatter.delivered) == (True, False, False)  # privacy mode
    photo = fake.send_photo(GROUP, ANN, image(fmt="JPEG"), caption="/describe")
    album = fake.send_album(
        7, BOB, [image(color="red"), image(color="blue")], caption="/blend", chat_type="private"
    )

    updates = await bot.get_updates(timeout=0)
    assert [u.update_id for u in updates] == list(range(updates[0].update_id, updates[0].update_id + 4))
    msg = updates[0].message
    assert msg and msg.text == cmd.text and msg.from_user and msg.from_user.username == "ann"
    assert msg.parse_entities() and next(iter(msg.parse_entities().values())) == "/imagine@imagine_test_bot"
    shot = updates[1].message
    assert photo.photo
    assert shot and shot.caption == "/describe" and shot.photo[-1].file_id == photo.photo[-1]["file_id"]
    data = await (await bot.get_file(shot.photo[-1].file_id)).download_as_bytearray()
    assert bytes(data) == fake.photo_bytes(photo)  # a JPEG that needs no shrinking is served as uploaded
    group_ids = {u.message.media_group_id for u in updates[2:] if u.message}
    assert (
        group_ids == {album[0].media_group_id}
        and updates[2].message
        and updates[2].message.chat.type == "private"
    )

    reply = await bot.send_message(GROUP, "grid", reply_markup=keyboard([("U1", "up:1")]))
    answer = fake.send_text(GROUP, BOB, "more foxes please", reply_to=reply.message_id)
    assert answer.delivered  # replies to the bot get through privacy mode

    offset = updates[-1].update_id + 1
    more = await bot.get_updates(offset=offset, timeout=0)
    assert [
        u.message.reply_to_message.message_id for u in more if u.message and u.message.reply_to_message
    ] == [reply.message_id]
    assert fake.pending_updates == 1  # confirmed updates are forgotten
    polling = asyncio.create_task(bot.get_updates(offset=more[-1].update_id + 1, timeout=5))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    query_id = fake.press(GROUP, reply.message_id, ANN, "up:1")
    pressed = await polling
    assert time.monotonic() - started < 1  # long polling wakes up when an update arrives
    assert pressed[0].callback_query and pressed[0].callback_query.id == query_id
    assert pressed[0].callback_query.data == "up:1" and pressed[0].callback_query.message
    assert await pressed[0].callback_query.answer("Upscaling…") is True
    assert fake.answered(query_id) == {"text": "Upscaling…"}
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await pressed[0].callback_query.answer("twice")


async def test_application_polling_reaches_handlers(fake: TelegramFake) -> None:
    async def on_imagine(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message
        prompt = " ".join(context.args or [])
        await update.effective_message.reply_text(
            f"Queued: {prompt}", reply_markup=keyboard([("U1", "up:1")])
        )

    async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query and query.message
        await query.answer("Upscaling…", show_alert=False)
        await query.edit_message_text(f"Upscaling {query.data}")

    app = (
        ApplicationBuilder()
        .token(fake.token)
        .base_url(f"{fake.base_url}/bot")
        .base_file_url(f"{fake.base_url}/file/bot")
        .build()
    )
    app.add_handler(CommandHandler("imagine", on_imagine))
    app.add_handler(CallbackQueryHandler(on_button))
    await app.initialize()
    await app.start()
    assert app.updater
    await app.updater.start_polling(poll_interval=0.0, timeout=dtm.timedelta(seconds=2))
    try:
        fake.send_text(GROUP, BOB, "/imagine@some_other_bot not for us")
        command = fake.send_text(GROUP, ANN, "/imagine@imagine_test_bot a red fox")
        [queued] = await fake.wait_until(lambda: fake.bot_messages(GROUP))
        assert queued.text == "Queued: a red fox" and queued.reply_to_message_id == command.message_id
        query_id = fake.press(GROUP, queued.message_id, ANN, text="U1")
        await fake.wait_until(lambda: fake.message(GROUP, queued.message_id).text == "Upscaling up:1")
        assert fake.answered(query_id) == {"text": "Upscaling…", "show_alert": False}
        assert fake.message(GROUP, queued.message_id).keyboard == []  # edited without reply_markup
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
    assert fake.calls("deleteWebhook") and fake.calls("getUpdates")
    assert [m.text for m in fake.bot_messages(GROUP)] == ["Upscaling up:1"]


class Receiver(HookReceiver):
    """A webhook endpoint that answers the statuses in `answers` first, then 200."""

    def __init__(self, *answers: int) -> None:
        super().__init__()
        self.answers = list(answers)

    async def _hook(self, request: web.Request) -> web.Response:
        await super()._hook(request)
        return web.Response(status=self.answers.pop(0) if self.answers else 200)

    def update_ids(self) -> list[int]:
        return [json.loads(body)["update_id"] for body in self.bodies]


@contextmanager
def dead_url() -> Iterator[str]:
    """A loopback URL nobody listens on (the port stays bound, so nobody else gets it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/hook"


async def test_webhook_delivers_pending_and_new_updates_with_the_secret(fake: TelegramFake, bot: Bot) -> None:
    early = fake.send_text(GROUP, ANN, "/imagine before the webhook")
    async with Receiver() as hook:
        assert await bot.set_webhook(hook.url(), secret_token="s3cr3t_-X", max_connections=1) is True
        late = fake.send_text(GROUP, BOB, "/imagine after it")
        await fake.wait_until(lambda: fake.pending_updates == 0)
    assert [headers[SECRET_HEADER] for _, headers in hook.calls] == ["s3cr3t_-X"] * 2
    assert hook.calls[0][1]["Content-Type"] == "application/json"
    updates = [Update.de_json(json.loads(body), bot) for body in hook.bodies]
    assert [(u.message.message_id, u.message.text) for u in updates if u.message] == [
        (early.message_id, early.text),
        (late.message_id, late.text),
    ]
    assert fake.webhook_deliveries == [(u.update_id, 200) for u in updates]
    info = await bot.get_webhook_info()
    assert (info.url, info.pending_update_count, info.max_connections) == (hook.url(), 0, 1)
    assert info.has_custom_certificate is False and info.last_error_message is None


async def test_webhook_retries_until_the_receiver_accepts(fake: TelegramFake, bot: Bot) -> None:
    async with Receiver(500, 500) as hook:
        await bot.set_webhook(hook.url(), max_connections=1)  # one connection: strictly in order
        fake.send_text(GROUP, ANN, "/imagine first")
        fake.send_text(GROUP, ANN, "/imagine second")
        first, second = fake.last_update_id - 1, fake.last_update_id
        await fake.wait_until(lambda: fake.pending_updates == 0)
    # the first stays pending (and ahead of the second) until a 2xx
    assert fake.webhook_deliveries == [(first, 500), (first, 500), (first, 200), (second, 200)]
    assert hook.update_ids() == [first, first, first, second]
    info = await bot.get_webhook_info()
    assert info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"
    assert info.last_error_date and abs(info.last_error_date.timestamp() - time.time()) < 60


async def test_get_updates_conflicts_with_a_webhook_until_it_is_deleted(fake: TelegramFake, bot: Bot) -> None:
    with dead_url() as url:
        polling = asyncio.create_task(bot.get_updates(timeout=5))
        await fake.wait_until(lambda: fake.calls("getUpdates"))
        await bot.set_webhook(url)
        with pytest.raises(Conflict, match=r"terminated by setWebhook request"):
            await polling
        with pytest.raises(Conflict, match=r"can't use getUpdates method while webhook is active"):
            await bot.get_updates(timeout=0)
        fake.send_text(GROUP, ANN, "/imagine undelivered")
        await fake.wait_until(lambda: fake.webhook_deliveries)
        info = await bot.get_webhook_info()
        assert (info.pending_update_count, info.last_error_message) == (1, "Connection refused")
        assert fake.webhook_deliveries[0] == (fake.last_update_id, None)
        assert await bot.delete_webhook() is True
    assert (await bot.get_webhook_info()).url == ""
    fake.send_text(GROUP, ANN, "/imagine polled")
    updates = await bot.get_updates(timeout=0)
    assert [u.message.text for u in updates if u.message] == ["/imagine undelivered", "/imagine polled"]


async def test_set_webhook_checks_its_parameters(fake: TelegramFake, bot: Bot) -> None:
    with dead_url() as url:
        for secret in ("not/base64+=", "späť", "x" * 257):
            with pytest.raises(BadRequest, match=r"(?i)^secret token contains unallowed characters$"):
                await bot.set_webhook(url, secret_token=secret)
        with pytest.raises(BadRequest, match=r"(?i)bad webhook: an HTTPS URL must be provided"):
            await bot.set_webhook("ftp://127.0.0.1/hook")
        assert (await bot.get_webhook_info()).url == ""  # nothing was set
        fake.send_text(GROUP, ANN, "/imagine dropped")
        assert await bot.set_webhook(url, secret_token="x" * 256, drop_pending_updates=True) is True
        assert (await bot.get_webhook_info()).pending_update_count == 0
        assert await bot.set_webhook("") is True  # an empty URL removes the webhook
    assert await bot.get_updates(timeout=0) == ()
    assert fake.webhook_deliveries == []
