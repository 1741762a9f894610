"""imagine-bot: Midjourney-style image generation for Discord and Telegram."""
