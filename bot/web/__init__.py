"""The web surface: server-rendered pages on the webhooks server (bot/webhooks.py), signed in with
one-time links the bot signs (auth.py), for members (their gallery, jobs, usage) and chat admins
(their chat's jobs, usage by member, bans and limits through AdminService, provider status).

`site.py` builds and mounts the pages, `auth.py` links, sessions and CSRF, `pages.py` the member
pages, `chat.py` a chat's pages, `thumbs.py` the thumbnail cache. Templates are Jinja2 (autoescaped)
under templates/, the little JavaScript there is under static/ (no build step)."""
