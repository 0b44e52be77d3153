-- Record callbacks: notify configs and the callback outbox. Portable SQL, like the initial schema.

-- AddLiveRecordNotifyConfig & co.: one per domain (lowercase).
CREATE TABLE notify_configs (
    domain             TEXT    NOT NULL PRIMARY KEY,
    notify_url         TEXT    NOT NULL,
    -- '' when the config has none.
    on_demand_url      TEXT    NOT NULL,
    need_status_notify BOOLEAN NOT NULL,
    notify_req_auth    BOOLEAN NOT NULL,
    -- '' when the config has none.
    notify_auth_key    TEXT    NOT NULL,
    created_at         BIGINT  NOT NULL,
    updated_at         BIGINT  NOT NULL
);

-- Callbacks to deliver and delivered (an outbox: survives restarts). A file callback is written
-- in the same transaction as its index row; the URL and the signing key are those of the
-- domain's notify config when the event happened.
CREATE TABLE notify_events (
    -- The Idempotency-Key every attempt carries (a file callback's is its record id).
    event_id        TEXT    NOT NULL PRIMARY KEY,
    domain          TEXT    NOT NULL,
    app             TEXT    NOT NULL,
    stream          TEXT    NOT NULL,
    -- file_created | record_started | record_paused | record_resumed | record_error
    event           TEXT    NOT NULL,
    url             TEXT    NOT NULL,
    -- The JSON body sent.
    body            TEXT    NOT NULL,
    -- NotifyAuthKey when NotifyReqAuth was on, else ''.
    auth_key        TEXT    NOT NULL,
    -- pending (still being tried) | success | failed (given up)
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL,
    -- Unix milliseconds. While an attempt is in flight, the end of its lease.
    next_attempt_at BIGINT  NOT NULL,
    -- Retries stop after this (Unix milliseconds); a resend moves it.
    retry_until     BIGINT  NOT NULL,
    created_at      BIGINT  NOT NULL,
    last_attempt_at BIGINT,
    -- The headers sent by the last attempt (JSON object).
    last_headers    TEXT,
    -- The receiver's answer to the last attempt ("HTTP 200: …") or why it failed.
    last_response   TEXT
);
CREATE INDEX notify_events_due ON notify_events (status, next_attempt_at);
CREATE INDEX notify_events_domain_time ON notify_events (domain, last_attempt_at);
CREATE INDEX notify_events_created ON notify_events (created_at);
