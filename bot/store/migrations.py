"""The database schema, as the migrations that build it, for each engine: SQLite script N moves
`PRAGMA user_version` from N-1 to N; PostgreSQL's are counted in its `schema_version` table.

Append new scripts; never edit one that has shipped (a database in the field has already run it).
The two lists build the same tables; PostgreSQL's started at the schema SQLite had reached by then.
"""

from __future__ import annotations

SQLITE: tuple[str, ...] = (
    """
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        parent_id TEXT,
        action_index INTEGER NOT NULL DEFAULT 0,
        provider TEXT NOT NULL,
        provider_task_id TEXT,
        request TEXT NOT NULL,
        state TEXT NOT NULL,
        progress INTEGER NOT NULL DEFAULT 0,
        preview_url TEXT,
        result TEXT,
        actions TEXT NOT NULL DEFAULT '{}',
        provider_data TEXT NOT NULL DEFAULT '{}',
        error TEXT,
        owner_platform TEXT NOT NULL,
        owner_id TEXT NOT NULL,
        owner_name TEXT NOT NULL DEFAULT '',
        chat_platform TEXT,
        chat_id TEXT,
        message_id TEXT,
        thread_id TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        deadline REAL NOT NULL,
        next_poll_at REAL,
        poll_failures INTEGER NOT NULL DEFAULT 0,
        submit_attempts INTEGER NOT NULL DEFAULT 0,
        tried_providers TEXT NOT NULL DEFAULT '[]'
    );
    CREATE UNIQUE INDEX jobs_provider_task ON jobs(provider, provider_task_id)
        WHERE provider_task_id IS NOT NULL;
    CREATE INDEX jobs_due ON jobs(next_poll_at) WHERE state IN ('submitted', 'running');
    CREATE INDEX jobs_queue ON jobs(provider, created_at) WHERE state = 'queued';
    CREATE INDEX jobs_message ON jobs(chat_platform, chat_id, message_id);
    CREATE INDEX jobs_owner ON jobs(owner_platform, owner_id, created_at);
    CREATE UNIQUE INDEX jobs_child ON jobs(parent_id, kind, action_index)
        WHERE parent_id IS NOT NULL AND state NOT IN ('failed', 'cancelled', 'timed_out');
    """,
    """
    CREATE TABLE user_settings (
        platform TEXT NOT NULL,
        user_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (platform, user_id, key)
    );
    """,
    """
    CREATE TABLE callback_secrets (
        job_id TEXT PRIMARY KEY,
        secret TEXT NOT NULL
    );
    """,
    # Operations (bot/quota.py, bot/access.py, bot/admin.py): one ledger row per created job, keyed on
    # its id so nothing is charged twice; bans; admin-set limits and provider holds.
    """
    CREATE TABLE quota_ledger (
        job_id TEXT PRIMARY KEY,
        platform TEXT NOT NULL,
        user_id TEXT NOT NULL,
        scope TEXT,
        provider TEXT NOT NULL,
        kind TEXT NOT NULL,
        cost REAL NOT NULL,
        exempt INTEGER NOT NULL DEFAULT 0,
        charged_at REAL NOT NULL,
        refunded_at REAL,
        refund_reason TEXT
    );
    CREATE INDEX quota_ledger_user ON quota_ledger(platform, user_id, charged_at);
    CREATE INDEX quota_ledger_scope ON quota_ledger(scope, charged_at);
    CREATE TABLE bans (
        platform TEXT NOT NULL,
        user_id TEXT NOT NULL,
        scope TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        banned_by TEXT NOT NULL DEFAULT '',
        banned_at REAL NOT NULL,
        PRIMARY KEY (platform, user_id, scope)
    );
    CREATE TABLE ops_settings (
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (scope, key)
    );
    """,
    # Which terminal state a chat message was last edited to show, so a final edit still pending when
    # the bot stopped (or a job that ended while no frontend listened) is sent on the next start.
    # Jobs that ended before this migration count as delivered.
    """
    ALTER TABLE jobs ADD COLUMN delivered_state TEXT;
    UPDATE jobs SET delivered_state = state WHERE state IN ('succeeded', 'failed', 'cancelled', 'timed_out');
    CREATE INDEX jobs_undelivered ON jobs(chat_platform, updated_at)
        WHERE delivered_state IS NULL AND state IN ('succeeded', 'failed', 'cancelled', 'timed_out');
    """,
    # Exactly once at the edges. A submit is claimed (`submitting`, with an attempt key and a lease)
    # before it is sent; a job remembers the platform event that created it (`origin`, unique) and the
    # message its first reply answers (`reply_to`) until that reply has a message id; every platform
    # event that creates work is committed to the inbox before it is acknowledged.
    """
    ALTER TABLE jobs ADD COLUMN submit_key TEXT;
    ALTER TABLE jobs ADD COLUMN submit_started REAL;
    ALTER TABLE jobs ADD COLUMN claimed_until REAL;
    ALTER TABLE jobs ADD COLUMN origin TEXT;
    ALTER TABLE jobs ADD COLUMN reply_to TEXT;
    CREATE UNIQUE INDEX jobs_origin ON jobs(origin) WHERE origin IS NOT NULL;
    CREATE INDEX jobs_submitting ON jobs(claimed_until) WHERE state = 'submitting';
    CREATE INDEX jobs_unreplied ON jobs(chat_platform) WHERE chat_platform IS NOT NULL AND message_id IS NULL;
    CREATE TABLE inbox (
        source TEXT NOT NULL,
        key TEXT NOT NULL,
        seq INTEGER NOT NULL,
        payload TEXT NOT NULL,
        received_at REAL NOT NULL,
        done_at REAL,
        PRIMARY KEY (source, key)
    );
    CREATE INDEX inbox_pending ON inbox(source, seq) WHERE done_at IS NULL;
    """,
    # Inputs out of job rows: uploaded images are stored once, by content (sha256), and a job names
    # the ones it uses; photos of albums seen in a chat are remembered for /blend across restarts.
    """
    CREATE TABLE blobs (
        sha256 TEXT PRIMARY KEY,
        mime TEXT NOT NULL,
        size INTEGER NOT NULL,
        data BLOB NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE job_blobs (
        job_id TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        PRIMARY KEY (job_id, sha256)
    );
    CREATE INDEX job_blobs_sha256 ON job_blobs(sha256);
    CREATE TABLE albums (
        chat_id TEXT NOT NULL,
        group_id TEXT NOT NULL,
        message_id INTEGER NOT NULL,
        file_id TEXT NOT NULL,
        seen_at REAL NOT NULL,
        PRIMARY KEY (chat_id, group_id, message_id)
    );
    CREATE INDEX albums_seen ON albums(seen_at);
    CREATE INDEX jobs_updated ON jobs(updated_at);
    """,
    # Several workers on one database: who is alive (`workers`, a heartbeat each), what each holds
    # (`leases`: a chat's messages, the Telegram long poll), the chat a platform event belongs to (so
    # the worker showing that chat processes it) or the worker that took it (a Discord interaction).
    """
    CREATE TABLE workers (
        id TEXT PRIMARY KEY,
        instance TEXT NOT NULL,
        started_at REAL NOT NULL,
        seen_at REAL NOT NULL,
        info TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        until REAL NOT NULL
    );
    CREATE INDEX leases_holder ON leases(holder);
    ALTER TABLE inbox ADD COLUMN chat TEXT;
    ALTER TABLE inbox ADD COLUMN taken_by TEXT;
    """,
    # The web surface (bot/web/): each sign-in link's one use, and the sessions they opened (keyed on
    # the sha256 of the cookie, so the table alone opens no session).
    """
    CREATE TABLE web_links (
        nonce TEXT PRIMARY KEY,
        used_at REAL NOT NULL,
        expires_at REAL NOT NULL
    );
    CREATE TABLE web_sessions (
        id TEXT PRIMARY KEY,
        platform TEXT NOT NULL,
        user_id TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        scope_platform TEXT,
        scope TEXT,
        chat_admin INTEGER NOT NULL DEFAULT 0,
        operator INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        revoked_at REAL
    );
    CREATE INDEX web_sessions_user ON web_sessions(platform, user_id);
    CREATE INDEX jobs_parent ON jobs(parent_id) WHERE parent_id IS NOT NULL;
    """,
    # Remix (bot/store/prompts.py): a prompt the bot asked a person for (Telegram's "reply with the
    # edited prompt" message), answerable until it is answered or cancelled, across restarts. A remix
    # job is made once per answer (its `origin`), so it is left out of the one-live-child-per-button
    # rule; presses without an edited prompt keep it.
    """
    CREATE TABLE prompt_requests (
        platform TEXT NOT NULL,
        chat_id TEXT NOT NULL,
        message_id TEXT NOT NULL,
        job_id TEXT NOT NULL,
        action TEXT NOT NULL,
        action_index INTEGER NOT NULL,
        user_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (platform, chat_id, message_id)
    );
    CREATE INDEX prompt_requests_created ON prompt_requests(created_at);
    DROP INDEX jobs_child;
    CREATE UNIQUE INDEX jobs_child ON jobs(parent_id, kind, action_index)
        WHERE parent_id IS NOT NULL AND origin IS NULL AND state NOT IN ('failed', 'cancelled', 'timed_out');
    """,
    # Languages (bot/i18n.py): the locale a job was asked in, which its message is written in.
    """
    ALTER TABLE jobs ADD COLUMN locale TEXT NOT NULL DEFAULT 'en';
    """,
)

POSTGRES: tuple[str, ...] = (
    """
    CREATE TABLE jobs (
        seq BIGSERIAL UNIQUE,
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        parent_id TEXT,
        action_index BIGINT NOT NULL DEFAULT 0,
        provider TEXT NOT NULL,
        provider_task_id TEXT,
        request TEXT NOT NULL,
        state TEXT NOT NULL,
        progress BIGINT NOT NULL DEFAULT 0,
        preview_url TEXT,
        result TEXT,
        actions TEXT NOT NULL DEFAULT '{}',
        provider_data TEXT NOT NULL DEFAULT '{}',
        error TEXT,
        owner_platform TEXT NOT NULL,
        owner_id TEXT NOT NULL,
        owner_name TEXT NOT NULL DEFAULT '',
        chat_platform TEXT,
        chat_id TEXT,
        message_id TEXT,
        thread_id TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        deadline DOUBLE PRECISION NOT NULL,
        next_poll_at DOUBLE PRECISION,
        poll_failures BIGINT NOT NULL DEFAULT 0,
        submit_attempts BIGINT NOT NULL DEFAULT 0,
        tried_providers TEXT NOT NULL DEFAULT '[]',
        delivered_state TEXT,
        submit_key TEXT,
        submit_started DOUBLE PRECISION,
        claimed_until DOUBLE PRECISION,
        origin TEXT,
        reply_to TEXT
    );
    CREATE UNIQUE INDEX jobs_provider_task ON jobs(provider, provider_task_id)
        WHERE provider_task_id IS NOT NULL;
    CREATE INDEX jobs_due ON jobs(next_poll_at) WHERE state IN ('submitted', 'running');
    CREATE INDEX jobs_queue ON jobs(provider, created_at) WHERE state = 'queued';
    CREATE INDEX jobs_message ON jobs(chat_platform, chat_id, message_id);
    CREATE INDEX jobs_owner ON jobs(owner_platform, owner_id, created_at);
    CREATE UNIQUE INDEX jobs_child ON jobs(parent_id, kind, action_index)
        WHERE parent_id IS NOT NULL AND state NOT IN ('failed', 'cancelled', 'timed_out');
    CREATE INDEX jobs_undelivered ON jobs(chat_platform, updated_at)
        WHERE delivered_state IS NULL AND state IN ('succeeded', 'failed', 'cancelled', 'timed_out');
    CREATE UNIQUE INDEX jobs_origin ON jobs(origin) WHERE origin IS NOT NULL;
    CREATE INDEX jobs_submitting ON jobs(claimed_until) WHERE state = 'submitting';
    CREATE INDEX jobs_unreplied ON jobs(chat_platform) WHERE chat_platform IS NOT NULL AND message_id IS NULL;
    CREATE INDEX jobs_updated ON jobs(updated_at);
    CREATE TABLE user_settings (
        platform TEXT NOT NULL,
        user_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (platform, user_id, key)
    );
    CREATE TABLE callback_secrets (
        job_id TEXT PRIMARY KEY,
        secret TEXT NOT NULL
    );
    CREATE TABLE quota_ledger (
        job_id TEXT PRIMARY KEY,
        platform TEXT NOT NULL,
        user_id TEXT NOT NULL,
        scope TEXT,
        provider TEXT NOT NULL,
        kind TEXT NOT NULL,
        cost DOUBLE PRECISION NOT NULL,
        exempt BIGINT NOT NULL DEFAULT 0,
        charged_at DOUBLE PRECISION NOT NULL,
        refunded_at DOUBLE PRECISION,
        refund_reason TEXT
    );
    CREATE INDEX quota_ledger_user ON quota_ledger(platform, user_id, charged_at);
    CREATE INDEX quota_ledger_scope ON quota_ledger(scope, charged_at);
    CREATE TABLE bans (
        platform TEXT NOT NULL,
        user_id TEXT NOT NULL,
        scope TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        banned_by TEXT NOT NULL DEFAULT '',
        banned_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (platform, user_id, scope)
    );
    CREATE TABLE ops_settings (
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (scope, key)
    );
    CREATE TABLE inbox (
        source TEXT NOT NULL,
        key TEXT NOT NULL,
        seq BIGINT NOT NULL,
        payload TEXT NOT NULL,
        received_at DOUBLE PRECISION NOT NULL,
        done_at DOUBLE PRECISION,
        PRIMARY KEY (source, key)
    );
    CREATE INDEX inbox_pending ON inbox(source, seq) WHERE done_at IS NULL;
    CREATE TABLE blobs (
        sha256 TEXT PRIMARY KEY,
        mime TEXT NOT NULL,
        size BIGINT NOT NULL,
        data BYTEA NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE job_blobs (
        job_id TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        PRIMARY KEY (job_id, sha256)
    );
    CREATE INDEX job_blobs_sha256 ON job_blobs(sha256);
    CREATE TABLE albums (
        chat_id TEXT NOT NULL,
        group_id TEXT NOT NULL,
        message_id BIGINT NOT NULL,
        file_id TEXT NOT NULL,
        seen_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (chat_id, group_id, message_id)
    );
    CREATE INDEX albums_seen ON albums(seen_at);
    """,
    # Several workers on one database: who is alive (`workers`, a heartbeat each), what each holds
    # (`leases`: a chat's messages, the Telegram long poll), the chat a platform event belongs to (so
    # the worker showing that chat processes it) or the worker that took it (a Discord interaction).
    """
    CREATE TABLE workers (
        id TEXT PRIMARY KEY,
        instance TEXT NOT NULL,
        started_at DOUBLE PRECISION NOT NULL,
        seen_at DOUBLE PRECISION NOT NULL,
        info TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        until DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX leases_holder ON leases(holder);
    ALTER TABLE inbox ADD COLUMN chat TEXT;
    ALTER TABLE inbox ADD COLUMN taken_by TEXT;
    """,
    # Change events sent by the database, in the transaction of the change: a writer that dies after
    # committing has told the other workers all the same. The payload is "origin kind key" (see
    # bot/events.py), the origin the writer's application_name. A job's event is sent when something a
    # chat shows changes (not for claims, polls due or delivery bookkeeping); an inbox entry's when it
    # belongs to a chat (the worker showing the chat processes it). NOTIFY sends one of equal payloads
    # per transaction: a batch of updates is one event.
    """
    CREATE FUNCTION imagine_bot_job_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('imagine_bot_events', current_setting('application_name') || ' job ' || NEW.id);
        RETURN NULL;
    END $$;
    CREATE FUNCTION imagine_bot_inbox_added() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('imagine_bot_events',
                          current_setting('application_name') || ' inbox ' || NEW.source);
        RETURN NULL;
    END $$;
    CREATE TRIGGER jobs_added AFTER INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION imagine_bot_job_changed();
    CREATE TRIGGER jobs_changed AFTER UPDATE ON jobs FOR EACH ROW
        WHEN ((OLD.state, OLD.progress, OLD.preview_url, OLD.result, OLD.actions, OLD.error, OLD.provider,
               OLD.provider_task_id, OLD.chat_platform, OLD.chat_id, OLD.message_id, OLD.thread_id,
               OLD.reply_to, OLD.updated_at)
              IS DISTINCT FROM
              (NEW.state, NEW.progress, NEW.preview_url, NEW.result, NEW.actions, NEW.error, NEW.provider,
               NEW.provider_task_id, NEW.chat_platform, NEW.chat_id, NEW.message_id, NEW.thread_id,
               NEW.reply_to, NEW.updated_at))
        EXECUTE FUNCTION imagine_bot_job_changed();
    CREATE TRIGGER inbox_added AFTER INSERT ON inbox FOR EACH ROW WHEN (NEW.chat IS NOT NULL)
        EXECUTE FUNCTION imagine_bot_inbox_added();
    """,
    # The web surface (bot/web/): each sign-in link's one use, and the sessions they opened (keyed on
    # the sha256 of the cookie, so the table alone opens no session).
    """
    CREATE TABLE web_links (
        nonce TEXT PRIMARY KEY,
        used_at DOUBLE PRECISION NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE web_sessions (
        id TEXT PRIMARY KEY,
        platform TEXT NOT NULL,
        user_id TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        scope_platform TEXT,
        scope TEXT,
        chat_admin BIGINT NOT NULL DEFAULT 0,
        operator BIGINT NOT NULL DEFAULT 0,
        created_at DOUBLE PRECISION NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL,
        revoked_at DOUBLE PRECISION
    );
    CREATE INDEX web_sessions_user ON web_sessions(platform, user_id);
    CREATE INDEX jobs_parent ON jobs(parent_id) WHERE parent_id IS NOT NULL;
    """,
    # Remix (bot/store/prompts.py): a prompt the bot asked a person for (Telegram's "reply with the
    # edited prompt" message), answerable until it is answered or cancelled, across restarts. A remix
    # job is made once per answer (its `origin`), so it is left out of the one-live-child-per-button
    # rule; presses without an edited prompt keep it.
    """
    CREATE TABLE prompt_requests (
        platform TEXT NOT NULL,
        chat_id TEXT NOT NULL,
        message_id TEXT NOT NULL,
        job_id TEXT NOT NULL,
        action TEXT NOT NULL,
        action_index BIGINT NOT NULL,
        user_id TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (platform, chat_id, message_id)
    );
    CREATE INDEX prompt_requests_created ON prompt_requests(created_at);
    DROP INDEX jobs_child;
    CREATE UNIQUE INDEX jobs_child ON jobs(parent_id, kind, action_index)
        WHERE parent_id IS NOT NULL AND origin IS NULL AND state NOT IN ('failed', 'cancelled', 'timed_out');
    """,
    """
    ALTER TABLE jobs ADD COLUMN locale TEXT NOT NULL DEFAULT 'en';
    """,
)
