"""The store's SQL, as module constants: every statement the repositories run, in one place.

Written once for both engines (see bot/store/engine.py: `?` placeholders, `{fragments}` where the
dialects differ, parameters cast where PostgreSQL could not tell their type). Terminal-state lists
come from `bot.domain.TERMINAL`; the work limited to one platform's jobs takes that platform twice
(see `ONLY`).
"""

from __future__ import annotations

from bot.domain import TERMINAL, JobState

COLUMNS = (
    "id", "kind", "parent_id", "action_index", "provider", "provider_task_id", "request", "state",
    "progress", "preview_url", "result", "actions", "provider_data", "error", "owner_platform",
    "owner_id", "owner_name", "chat_platform", "chat_id", "message_id", "thread_id", "created_at",
    "updated_at", "deadline", "next_poll_at", "poll_failures", "submit_attempts", "tried_providers",
    "submit_key", "submit_started", "claimed_until", "origin", "reply_to", "locale",
)  # fmt: skip
PLACEMENT = ("chat_platform", "chat_id", "message_id", "thread_id", "reply_to")
#: What `save` writes: never the identity, never the placement (only `place` sets where a job is shown),
#: never the claim (only the claim statements take and hand over a submit).
MUTABLE = tuple(
    c for c in COLUMNS
    if c not in ("id", "kind", "parent_id", "action_index", "created_at", "origin", "submit_key", "locale",
                 *PLACEMENT)
)  # fmt: skip

INSERT_JOB = f"INSERT INTO jobs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
INSERT_NEW = INSERT_JOB + " ON CONFLICT DO NOTHING"
TERMINAL_SQL = f"({', '.join(repr(s.value) for s in JobState if s in TERMINAL)})"
LIVE_SQL = f"({', '.join(repr(s.value) for s in JobState if s not in TERMINAL)})"
RETURNING = f" RETURNING {', '.join(COLUMNS)}"
AT_PROVIDER = "('submitting', 'submitted', 'running')"
#: Work limited to jobs asked for on one platform (the two parameters: that platform, twice), or all.
ONLY = "(CAST(? AS TEXT) IS NULL OR owner_platform = ?)"
# A write from a stale copy must not undo a newer one: a terminal row is final, a state only moves
# forwards and progress never drops (the poller, webhooks and commands all write the same rows).


def update_job(columns: tuple[str, ...], unchanged: bool = False) -> str:
    """The UPDATE writing `columns` (some of MUTABLE: only what changed) to one job, if it may move;
    `unchanged`: only if its `updated_at` is still the one given (no one wrote it since it was read)."""
    sets = ", ".join("progress = {greatest}(progress, ?)" if c == "progress" else f"{c} = ?" for c in columns)
    return (
        f"UPDATE jobs SET {sets}"
        f" WHERE id = ? AND state NOT IN {TERMINAL_SQL} AND state IN (SELECT value FROM {{ids}})"
        + (" AND updated_at = ?" if unchanged else "")
        + f" RETURNING {', '.join(PLACEMENT)}, progress"
    )


SET_PLACEMENT = f"UPDATE jobs SET {', '.join(f'{c} = ?' for c in PLACEMENT)} WHERE id = ?"
GET_BY_ORIGIN = f"SELECT {', '.join(COLUMNS)} FROM jobs WHERE origin = ?"
# Claims: one statement each, so of several processes only one takes a job. A queued job is claimed
# with a fresh attempt key and a lease, and only while the provider has room (counted in the same
# statement, so two processes can't both fill the last slot).
CLAIM_QUEUED = (
    "UPDATE jobs SET state = 'submitting', submit_key = id || '-' || ?,"
    " submit_started = ?, claimed_until = ?, updated_at = ?"
    " WHERE id IN (SELECT id FROM jobs WHERE state = 'queued' AND provider = ?"
    f" AND (next_poll_at IS NULL OR next_poll_at <= ?) AND {ONLY} ORDER BY created_at, {{seq}}"
    f" LIMIT {{greatest}}(0, ? - (SELECT COUNT(*) FROM jobs WHERE provider = ? AND state IN {AT_PROVIDER})))"
    " AND state = 'queued'" + RETURNING
)
#: A submit whose lease ran out (its process died, or its outcome is unknown): one process reconciles.
CLAIM_STALE_SUBMITS = (
    "UPDATE jobs SET claimed_until = ? WHERE id IN (SELECT id FROM jobs WHERE state = 'submitting'"
    f" AND claimed_until <= ? AND {ONLY} ORDER BY claimed_until LIMIT ?)"
    " AND state = 'submitting' AND claimed_until <= ?"
    + RETURNING
)
#: Only the holder of the attempt records its task (a cancel or a reconcile elsewhere may have won).
RECORD_SUBMIT = (
    "UPDATE jobs SET state = 'submitted', provider_task_id = ?, next_poll_at = ?, poll_failures = 0,"
    " claimed_until = NULL, updated_at = ? WHERE id = ? AND state = 'submitting' AND submit_key = ?"
    + RETURNING
)
#: Hand a claimed submit back to the queue (it is known not to have reached the provider).
RELEASE_SUBMIT = (
    "UPDATE jobs SET state = 'queued', provider = ?, tried_providers = ?, submit_attempts = ?,"
    " next_poll_at = ?, claimed_until = NULL, updated_at = ?"
    " WHERE id = ? AND state = 'submitting' AND submit_key = ?" + RETURNING
)
#: Keep the claim but look again at `claimed_until` (an unknown outcome, to be reconciled then).
EXTEND_CLAIM = (
    "UPDATE jobs SET claimed_until = ?, poll_failures = ? WHERE id = ? AND state = 'submitting'"
    " AND submit_key = ?"
)
#: Due polls are taken by pushing their next poll past a lease; the poll sets the real next time.
CLAIM_POLLS = (
    "UPDATE jobs SET next_poll_at = ? WHERE id IN (SELECT value FROM {ids})"
    " AND state IN ('submitted', 'running') AND next_poll_at <= ? RETURNING id"
)
#: Claimed polls handed back (a clean stop cut them short): due again at once.
RELEASE_POLLS = (
    "UPDATE jobs SET next_poll_at = ? WHERE id IN (SELECT value FROM {ids})"
    " AND state IN ('submitted', 'running')"
)
UNREPLIED = (
    f"SELECT {', '.join(COLUMNS)} FROM jobs WHERE chat_platform = ? AND message_id IS NULL"
    " ORDER BY created_at LIMIT ?"
)
UNPLACE = (
    "UPDATE jobs SET chat_platform = NULL, chat_id = NULL, thread_id = NULL, reply_to = NULL WHERE id = ?"
)
INBOX_ADD = (
    "INSERT INTO inbox (source, key, seq, payload, chat, taken_by, received_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
INBOX_PENDING = (
    "SELECT key, seq, payload, chat FROM inbox WHERE source = ? AND done_at IS NULL"
    " AND (CAST(? AS TEXT) IS NULL OR taken_by IS NULL OR taken_by = ?) ORDER BY seq LIMIT ?"
)
INBOX_DONE = "UPDATE inbox SET done_at = ? WHERE source = ? AND key = ?"
INBOX_LAST = "SELECT MAX(seq) FROM inbox WHERE source = ?"
INBOX_PRUNE = (
    "DELETE FROM inbox WHERE done_at < ?"
    " AND seq < (SELECT MAX(seq) FROM inbox AS newest WHERE newest.source = inbox.source)"
)
SELECT = f"SELECT {', '.join(COLUMNS)} FROM jobs"
GET_JOB = SELECT + " WHERE id = ?"
GET_BY_TASK = SELECT + " WHERE provider = ? AND provider_task_id = ?"
GET_BY_MESSAGE = SELECT + " WHERE chat_platform = ? AND chat_id = ? AND message_id = ?"
#: A press's live child; remix jobs (one per answer, by `origin`) are not a button's (index jobs_child).
GET_ACTIVE_CHILD = (
    SELECT + " WHERE parent_id = ? AND kind = ? AND action_index = ? AND origin IS NULL"
    " AND state NOT IN ('failed', 'cancelled', 'timed_out')"
)
#: Jobs due by a horizon, when one is due now (a batched poll takes those due soon along with it).
DUE = (
    SELECT + f" WHERE state IN ('submitted', 'running') AND next_poll_at <= ? AND {ONLY}"
    " AND EXISTS (SELECT 1 FROM jobs AS now_due WHERE now_due.state IN ('submitted', 'running')"
    " AND now_due.next_poll_at <= ? AND (CAST(? AS TEXT) IS NULL OR now_due.owner_platform = ?))"
    " ORDER BY next_poll_at LIMIT ?"
)
QUEUED = (
    SELECT + " WHERE state = 'queued' AND provider = ? AND (next_poll_at IS NULL OR next_poll_at <= ?)"
    " ORDER BY created_at, {seq} LIMIT ?"
)
QUEUED_PROVIDERS = "SELECT DISTINCT provider FROM jobs WHERE state = 'queued'"
QUEUE_POSITION = (
    "SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND provider = ?"
    " AND (created_at < ? OR (created_at = ? AND {seq} <= (SELECT {seq} FROM jobs WHERE id = ?)))"
)
ACTIVE_COUNT = f"SELECT COUNT(*) FROM jobs WHERE provider = ? AND state IN {AT_PROVIDER}"
COUNT_BY_STATE = "SELECT provider, state, COUNT(*) FROM jobs GROUP BY provider, state"
EXPIRED = SELECT + f" WHERE state NOT IN {TERMINAL_SQL} AND deadline <= ? AND {ONLY}"
LIVE_ELSEWHERE = (
    SELECT + f" WHERE state NOT IN {TERMINAL_SQL}"
    " AND provider NOT IN (SELECT value FROM {ids})"
)
NEXT_DUE = (
    "SELECT MIN(t) FROM (SELECT MIN(next_poll_at) AS t FROM jobs WHERE state IN ('submitted', 'running')"
    " UNION ALL SELECT MIN(claimed_until) FROM jobs WHERE state = 'submitting'"
    " UNION ALL SELECT MIN(deadline) FROM jobs"
    f" WHERE state NOT IN {TERMINAL_SQL}) AS due"
)
RECENT = SELECT + " ORDER BY created_at DESC, {seq} DESC LIMIT ?"
RECENT_BY_OWNER = (
    SELECT + " WHERE owner_platform = ? AND owner_id = ? ORDER BY created_at DESC, {seq} DESC LIMIT ?"
)
PUT_CALLBACK_SECRET = "INSERT INTO callback_secrets (job_id, secret) VALUES (?, ?) ON CONFLICT DO NOTHING"
WITH_CALLBACKS = "SELECT job_id FROM callback_secrets WHERE job_id IN (SELECT value FROM {ids})"
GET_CALLBACK_SECRET = "SELECT secret FROM callback_secrets WHERE job_id = ?"
GET_CALLBACK_TARGET = (
    f"SELECT c.secret, {', '.join(f'j.{c}' for c in COLUMNS)} FROM callback_secrets c"
    " JOIN jobs j ON j.id = c.job_id WHERE c.job_id = ?"
)
UNDELIVERED = (
    SELECT + " WHERE chat_platform = ? AND message_id IS NOT NULL AND delivered_state IS NULL"
    f" AND state IN {TERMINAL_SQL} AND updated_at >= ? ORDER BY updated_at LIMIT ?"
)
MARK_DELIVERED = "UPDATE jobs SET delivered_state = ? WHERE id = ?"
GET_SETTINGS = "SELECT key, value FROM user_settings WHERE platform = ? AND user_id = ?"
PUT_SETTING = (
    "INSERT INTO user_settings (platform, user_id, key, value) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (platform, user_id, key) DO UPDATE SET value = excluded.value"
)

# -- the credit ledger: one row per created job, keyed on its id so nothing is charged twice ----------
CHARGE = (
    "INSERT INTO quota_ledger (job_id, platform, user_id, scope, provider, kind, cost, exempt, charged_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job_id) DO NOTHING"
)
REFUND = (
    "UPDATE quota_ledger SET refunded_at = ?, refund_reason = ? WHERE job_id = ? AND refunded_at IS NULL"
)
_REFUNDABLE = "state IN ('failed', 'timed_out') OR (state = 'cancelled' AND provider_task_id IS NULL)"
RECONCILE_REFUNDS = (
    "UPDATE quota_ledger SET refunded_at = ?,"
    " refund_reason = (SELECT state FROM jobs WHERE jobs.id = quota_ledger.job_id)"
    f" WHERE refunded_at IS NULL AND job_id IN (SELECT id FROM jobs WHERE {_REFUNDABLE})"
)
USER_CHARGES = (
    "SELECT charged_at, cost FROM quota_ledger WHERE platform = ? AND user_id = ? AND charged_at > ?"
    " AND refunded_at IS NULL AND exempt = 0 AND cost > 0 ORDER BY charged_at"
)
SCOPE_CHARGES = (
    "SELECT charged_at, cost FROM quota_ledger WHERE scope = ? AND charged_at > ?"
    " AND refunded_at IS NULL AND exempt = 0 AND cost > 0 ORDER BY charged_at"
)
LIVE_JOBS = f"SELECT COUNT(*) FROM jobs WHERE owner_platform = ? AND owner_id = ? AND state IN {LIVE_SQL}"
GET_CHARGE = "SELECT cost, refunded_at, refund_reason FROM quota_ledger WHERE job_id = ?"
STATS = (
    "SELECT j.provider, COUNT(*), SUM(CASE WHEN j.state = 'succeeded' THEN 1 ELSE 0 END),"
    " SUM(CASE WHEN j.state IN ('failed', 'timed_out') THEN 1 ELSE 0 END),"
    f" SUM(CASE WHEN j.state IN {LIVE_SQL} THEN 1 ELSE 0 END),"
    " SUM(CASE WHEN l.refunded_at IS NOT NULL THEN 1 ELSE 0 END),"
    " COALESCE(SUM(CASE WHEN l.refunded_at IS NULL THEN l.cost END), 0)"
    " FROM jobs j LEFT JOIN quota_ledger l ON l.job_id = j.id"
    " WHERE j.created_at >= ? AND (CAST(? AS TEXT) IS NULL OR l.scope = ?)"
    " GROUP BY j.provider ORDER BY j.provider"
)

# -- admin overrides (limits, provider holds) and bans ------------------------------------------------
GET_OPS = "SELECT key, value FROM ops_settings WHERE scope = ?"
PUT_OPS = (
    "INSERT INTO ops_settings (scope, key, value) VALUES (?, ?, ?)"
    " ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value"
)
DELETE_OPS = "DELETE FROM ops_settings WHERE scope = ? AND key = ?"
BAN = (
    "INSERT INTO bans (platform, user_id, scope, reason, banned_by, banned_at) VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (platform, user_id, scope) DO UPDATE SET reason = excluded.reason,"
    " banned_by = excluded.banned_by, banned_at = excluded.banned_at"
)
UNBAN = "DELETE FROM bans WHERE platform = ? AND user_id = ? AND scope = ?"
IS_BANNED = (
    "SELECT scope, reason FROM bans WHERE platform IN (?, '*') AND user_id = ? AND scope IN ('*', ?) LIMIT 1"
)
LIST_BANS = (
    "SELECT platform, user_id, scope, reason, banned_by, banned_at FROM bans"
    " WHERE CAST(? AS TEXT) IS NULL OR scope = ? ORDER BY banned_at"
)

# -- inputs, stored once by content; which jobs use them; albums seen for /blend ---------------------
PUT_BLOB = (
    "INSERT INTO blobs (sha256, mime, size, data, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
GET_BLOBS = "SELECT sha256, data FROM blobs WHERE sha256 IN (SELECT value FROM {ids})"
HAS_BLOB = "SELECT 1 FROM blobs WHERE sha256 = ?"
USE_BLOB = "INSERT INTO job_blobs (job_id, sha256) VALUES (?, ?) ON CONFLICT DO NOTHING"
ADD_ALBUM_PHOTO = (
    "INSERT INTO albums (chat_id, group_id, message_id, file_id, seen_at) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT DO NOTHING"
)
ALBUM_PHOTOS = "SELECT file_id FROM albums WHERE chat_id = ? AND group_id = ? ORDER BY message_id"

# -- retention: finished jobs (and what only they used) older than the cutoff ------------------------
_OLD = f"state IN {TERMINAL_SQL} AND updated_at < ?"
COUNT_PRUNABLE = f"SELECT COUNT(*) FROM jobs WHERE {_OLD}"
PRUNE_LEDGER = f"DELETE FROM quota_ledger WHERE job_id IN (SELECT id FROM jobs WHERE {_OLD})"
PRUNE_SECRETS = f"DELETE FROM callback_secrets WHERE job_id IN (SELECT id FROM jobs WHERE {_OLD})"
PRUNE_USES = f"DELETE FROM job_blobs WHERE job_id IN (SELECT id FROM jobs WHERE {_OLD})"
PRUNE_JOBS = f"DELETE FROM jobs WHERE {_OLD}"
#: Inputs stored before the cutoff that no job but a prunable one uses (parameters: the cutoff, twice).
_UNUSED_BLOB = (
    "created_at < ? AND sha256 NOT IN"
    f" (SELECT sha256 FROM job_blobs WHERE job_id NOT IN (SELECT id FROM jobs WHERE {_OLD}))"
)
COUNT_UNUSED_BLOBS = f"SELECT COUNT(*), COALESCE(SUM(size), 0) FROM blobs WHERE {_UNUSED_BLOB}"
PRUNE_BLOBS = f"DELETE FROM blobs WHERE {_UNUSED_BLOB}"
PRUNE_ALBUMS = "DELETE FROM albums WHERE seen_at < ?"

# -- moving a store between databases (`imagine-bot db copy`, bot/store/copy.py) ---------------------
# Every table of the store, with the columns copied and its primary key, in one place: a migration
# adding a table or a column adds it here too (tests/ops/test_db_copy.py compares this with the schema).
# PostgreSQL's `jobs.seq` is generated, never copied: jobs are copied in queue order (created_at, then
# the source's seq/rowid), so the target numbers them in that order.
COPY_TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "jobs": ((*COLUMNS, "delivered_state"), ("id",)),
    "user_settings": (("platform", "user_id", "key", "value"), ("platform", "user_id", "key")),
    "callback_secrets": (("job_id", "secret"), ("job_id",)),
    "quota_ledger": (
        ("job_id", "platform", "user_id", "scope", "provider", "kind", "cost", "exempt", "charged_at",
         "refunded_at", "refund_reason"),
        ("job_id",),
    ),
    "bans": (
        ("platform", "user_id", "scope", "reason", "banned_by", "banned_at"),
        ("platform", "user_id", "scope"),
    ),
    "ops_settings": (("scope", "key", "value"), ("scope", "key")),
    "inbox": (
        ("source", "key", "seq", "payload", "chat", "taken_by", "received_at", "done_at"), ("source", "key")
    ),
    "blobs": (("sha256", "mime", "size", "data", "created_at"), ("sha256",)),
    "job_blobs": (("job_id", "sha256"), ("job_id", "sha256")),
    "albums": (
        ("chat_id", "group_id", "message_id", "file_id", "seen_at"),
        ("chat_id", "group_id", "message_id"),
    ),
    "web_links": (("nonce", "used_at", "expires_at"), ("nonce",)),
    "web_sessions": (
        ("id", "platform", "user_id", "name", "scope_platform", "scope", "chat_admin", "operator",
         "created_at", "expires_at", "revoked_at"),
        ("id",),
    ),
    "prompt_requests": (
        ("platform", "chat_id", "message_id", "job_id", "action", "action_index", "user_id", "created_at"),
        ("platform", "chat_id", "message_id"),
    ),
}  # fmt: skip
#: The job ids in queue order (the source's), then the jobs of a batch of them.
COPY_JOB_ORDER = "SELECT id FROM jobs ORDER BY created_at, {seq}"
#: Tables `db copy` leaves out: who is running now, not what the bot knows.
NOT_COPIED = ("workers", "leases")
COPY_JOBS = f"SELECT {', '.join(COPY_TABLES['jobs'][0])} FROM jobs WHERE id IN (SELECT value FROM {{ids}})"
#: Whether a database holds a store at all, and at which schema version (0: none).
SQLITE_SCHEMA_VERSION = "PRAGMA user_version"
POSTGRES_HAS_SCHEMA = "SELECT to_regclass('schema_version') IS NOT NULL"
POSTGRES_SCHEMA_VERSION = "SELECT COALESCE(MAX(version), 0) FROM schema_version"


def copy_count(table: str) -> str:
    return f"SELECT COUNT(*) FROM {table}"


def copy_page(table: str, after: bool) -> str:
    """A page of `table` in primary-key order, the first (`after` False: one parameter, the limit) or
    the one after a key (the key's values, then the limit)."""
    columns, key = COPY_TABLES[table]
    where = f" WHERE ({', '.join(key)}) > ({', '.join('?' for _ in key)})" if after else ""
    return f"SELECT {', '.join(columns)} FROM {table}{where} ORDER BY {', '.join(key)} LIMIT ?"


def copy_insert(table: str) -> str:
    """One row of `table`, unless a row with its key (or another unique value) is already there."""
    columns = COPY_TABLES[table][0]
    return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
            " ON CONFLICT DO NOTHING")  # fmt: skip

# -- workers sharing the database: heartbeats and leases (see bot/workers.py) -------------------------
WORKER_JOIN = (
    "INSERT INTO workers (id, instance, started_at, seen_at, info) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (id) DO UPDATE SET instance = excluded.instance, started_at = excluded.started_at,"
    " seen_at = excluded.seen_at, info = excluded.info"
)
#: A heartbeat; no row when another process took the same worker id since.
WORKER_BEAT = "UPDATE workers SET seen_at = ?, info = ? WHERE id = ? AND instance = ? RETURNING id"
WORKER_LEAVE = "DELETE FROM workers WHERE id = ? AND instance = ?"
WORKERS = "SELECT id, instance, started_at, seen_at, info FROM workers ORDER BY id"
#: Take a lease that is free, lapsed or already ours; a row comes back only when it is ours now.
LEASE_TAKE = (
    "INSERT INTO leases (name, holder, until) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE"
    " SET holder = excluded.holder, until = excluded.until"
    " WHERE leases.until <= ? OR leases.holder = excluded.holder RETURNING name"
)
LEASE_RENEW = "UPDATE leases SET until = ? WHERE holder = ? AND until > ? RETURNING name"
LEASE_RELEASE_ALL = "DELETE FROM leases WHERE holder = ?"
LEASE_HOLDER = "SELECT holder FROM leases WHERE name = ? AND until > ?"
LEASE_COUNTS = "SELECT holder, COUNT(*) FROM leases WHERE until > ? GROUP BY holder"
#: Chats with something to show (a live job, an undelivered final, a pending platform event) that no
#: other live worker holds: free, lapsed, or held by this worker's id in an earlier life.
_FREE_CHAT = (
    "NOT EXISTS (SELECT 1 FROM leases WHERE leases.name = 'chat:' || {platform} || ':' || {chat}"
    " AND leases.until > ? AND leases.holder <> ?)"
)
UNHELD_CHATS = (
    "SELECT DISTINCT chat_platform, chat_id FROM jobs WHERE chat_platform IS NOT NULL"
    f" AND (state NOT IN {TERMINAL_SQL} OR delivered_state IS NULL)"
    f" AND {_FREE_CHAT.format(platform='jobs.chat_platform', chat='jobs.chat_id')}"
    " UNION SELECT DISTINCT source, chat FROM inbox WHERE done_at IS NULL AND chat IS NOT NULL"
    f" AND {_FREE_CHAT.format(platform='inbox.source', chat='inbox.chat')}"
)
#: Catch-up after missed change events: jobs written since a moment, oldest first.
CHANGED_SINCE = SELECT + " WHERE updated_at >= ? ORDER BY updated_at LIMIT ?"

# -- the web surface (bot/web/, bot/store/web.py) --------------------------------------------------
#: A sign-in link's one use: the row is the proof it was used (PRIMARY KEY: a second use inserts none),
#: in the database every worker shares, so a link used on one worker is refused on every other.
WEB_LINK_USE = "INSERT INTO web_links (nonce, used_at, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
WEB_LINKS_PRUNE = "DELETE FROM web_links WHERE expires_at < ?"
_WEB_SESSION_COLUMNS = (
    "id, platform, user_id, name, scope_platform, scope, chat_admin, operator, created_at, expires_at"
)
WEB_SESSION_ADD = (
    f"INSERT INTO web_sessions ({_WEB_SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
WEB_SESSION_GET = (
    f"SELECT {_WEB_SESSION_COLUMNS} FROM web_sessions WHERE id = ? AND revoked_at IS NULL AND expires_at > ?"
)
WEB_SESSIONS_LIVE = (
    f"SELECT {_WEB_SESSION_COLUMNS} FROM web_sessions WHERE revoked_at IS NULL AND expires_at > ?"
    " ORDER BY created_at"
)
WEB_SESSION_REVOKE = "UPDATE web_sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"
WEB_SESSION_REVOKE_PREFIX = (
    "UPDATE web_sessions SET revoked_at = ? WHERE substr(id, 1, ?) = ? AND revoked_at IS NULL"
)
WEB_SESSION_REVOKE_USER = (
    "UPDATE web_sessions SET revoked_at = ? WHERE platform = ? AND user_id = ? AND revoked_at IS NULL"
)
WEB_SESSIONS_PRUNE = "DELETE FROM web_sessions WHERE expires_at < ?"
#: The signing secret, stored once: the first worker to start writes it, every other reads that one.
OPS_PUT_IF_ABSENT = "INSERT INTO ops_settings (scope, key, value) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
OPS_GET = "SELECT value FROM ops_settings WHERE scope = ? AND key = ?"
_J = ", ".join(f"j.{c}" for c in COLUMNS)
#: A chat's jobs, newest first: those counted under its scope key (the ledger row written when each was
#: created, at its creation: ordered by that, the ledger's (scope, charged_at) index serves the LIMIT).
SCOPE_JOBS = (
    f"SELECT {_J} FROM quota_ledger l JOIN jobs j ON j.id = l.job_id WHERE l.scope = ?"
    " ORDER BY l.charged_at DESC LIMIT ?"
)
JOB_SCOPE = "SELECT scope FROM quota_ledger WHERE job_id = ?"
#: Every chat (scope key) jobs were counted under: its jobs and the newest one's time, newest first.
SCOPE_CHATS = (
    "SELECT scope, COUNT(*), MAX(charged_at) FROM quota_ledger WHERE scope LIKE '%:%'"
    " GROUP BY scope ORDER BY 3 DESC LIMIT ?"
)
JOB_CHILDREN = SELECT + " WHERE parent_id = ? ORDER BY created_at"
#: Usage by member in a chat since a moment: jobs, credits charged and not refunded, a display name.
SCOPE_MEMBERS = (
    "SELECT l.platform, l.user_id, MAX(j.owner_name), COUNT(*),"
    " COALESCE(SUM(CASE WHEN l.refunded_at IS NULL THEN l.cost END), 0)"
    " FROM quota_ledger l LEFT JOIN jobs j ON j.id = l.job_id WHERE l.scope = ? AND l.charged_at >= ?"
    " GROUP BY l.platform, l.user_id ORDER BY 5 DESC, 4 DESC"
)

# -- prompt requests (bot/store/prompts.py): Remix prompts asked for and not yet answered -----------
PROMPT_REQUEST_ADD = (
    "INSERT INTO prompt_requests (platform, chat_id, message_id, job_id, action, action_index, user_id,"
    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
PROMPT_REQUEST_GET = (
    "SELECT platform, chat_id, message_id, job_id, action, action_index, user_id, created_at"
    " FROM prompt_requests WHERE platform = ? AND chat_id = ? AND message_id = ?"
)
#: The presser's open request for the same button (a second press, or the press handled again).
PROMPT_REQUEST_OPEN = (
    "SELECT platform, chat_id, message_id, job_id, action, action_index, user_id, created_at"
    " FROM prompt_requests WHERE platform = ? AND chat_id = ? AND job_id = ? AND action = ?"
    " AND action_index = ? AND user_id = ? AND created_at >= ? ORDER BY created_at DESC LIMIT 1"
)
PROMPT_REQUEST_REMOVE = "DELETE FROM prompt_requests WHERE platform = ? AND chat_id = ? AND message_id = ?"
PROMPT_REQUESTS_PRUNE = "DELETE FROM prompt_requests WHERE created_at < ?"
