"""Everything the bot persists, behind one repository (`JobStore`) over one of two engines: SQLite
(aiosqlite, WAL; the embedded default) or PostgreSQL (asyncpg), chosen by `database:` in the config.

`jobs.py` is the repository, `ops.py`, `inputs.py` and `prompts.py` its parts (ledger, bans, admin overrides;
stored inputs and albums; Remix prompt requests), `sql.py` every statement, `rows.py` the job <-> row
mapping, `migrations.py` the schema of each engine, `engine.py` the seam with `sqlite.py` and `postgres.py`
behind it. No other module writes SQL or names a table.
"""

from bot.store.engine import DatabaseError
from bot.store.jobs import InboxEntry, JobStore, Pruned

__all__ = ["DatabaseError", "InboxEntry", "JobStore", "Pruned"]
