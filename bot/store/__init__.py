"""Everything the bot persists, behind one repository (`JobStore`), on SQLite (aiosqlite, WAL).

`jobs.py` is the repository, `sql.py` its statements, `rows.py` the job <-> row mapping and
`migrations.py` the schema. No other module writes SQL for the jobs, the inbox or the claims.
"""

from bot.store.jobs import JobStore

__all__ = ["JobStore"]
