-- liverec catalog, initial schema. Portable SQL: the same file runs on SQLite and PostgreSQL.
-- Times are BIGINT Unix milliseconds; lists are JSON text.

CREATE TABLE access_keys (
    id         TEXT    NOT NULL PRIMARY KEY,
    -- Plaintext: HMAC signatures need it (the SQLite file is mode 0600).
    secret     TEXT    NOT NULL,
    enabled    BOOLEAN NOT NULL,
    created_at BIGINT  NOT NULL
);

-- Signature nonces; the primary key makes "first use wins" atomic.
CREATE TABLE nonces (
    key_id     TEXT   NOT NULL,
    nonce      TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (key_id, nonce)
);
CREATE INDEX nonces_expires_at ON nonces (expires_at);

CREATE TABLE domains (
    name       TEXT   NOT NULL PRIMARY KEY,
    created_at BIGINT NOT NULL
);

CREATE TABLE record_configs (
    domain              TEXT    NOT NULL,
    app                 TEXT    NOT NULL,
    stream              TEXT    NOT NULL,
    oss_endpoint        TEXT    NOT NULL,
    oss_bucket          TEXT    NOT NULL,
    on_demand           INTEGER NOT NULL,
    delay_time          INTEGER NOT NULL,
    start_time          TEXT,
    end_time            TEXT,
    -- JSON arrays.
    formats             TEXT    NOT NULL,
    transcode_formats   TEXT    NOT NULL,
    transcode_templates TEXT    NOT NULL,
    created_at          BIGINT  NOT NULL,
    PRIMARY KEY (domain, app, stream)
);
CREATE INDEX record_configs_domain_created ON record_configs (domain, created_at);

CREATE TABLE recordings (
    record_id     TEXT             NOT NULL PRIMARY KEY,
    domain        TEXT             NOT NULL,
    app           TEXT             NOT NULL,
    stream        TEXT             NOT NULL,
    format        TEXT             NOT NULL,
    oss_bucket    TEXT             NOT NULL,
    oss_endpoint  TEXT             NOT NULL,
    oss_object    TEXT             NOT NULL,
    start_time    BIGINT           NOT NULL,
    end_time      BIGINT           NOT NULL,
    duration_secs DOUBLE PRECISION NOT NULL,
    size          BIGINT           NOT NULL,
    width         INTEGER          NOT NULL,
    height        INTEGER          NOT NULL,
    created_at    BIGINT           NOT NULL
);
CREATE INDEX recordings_stream_start ON recordings (domain, app, stream, start_time);
