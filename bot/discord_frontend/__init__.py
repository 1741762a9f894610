"""The Discord frontend: slash commands, restart-proof buttons and in-place progress (discord.py 2.7)."""
