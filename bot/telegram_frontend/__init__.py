"""The Telegram frontend: python-telegram-bot 22 in the bot's event loop.

`app.TelegramFrontend` is the entry point (built by `bot.frontends.build`); `handlers` turns commands
and button presses into service calls; `render` and `keyboards` are pure Job -> message functions;
`edits` applies a rendered view to a message (the `Delivery` sender); `albums` remembers media groups.
"""
