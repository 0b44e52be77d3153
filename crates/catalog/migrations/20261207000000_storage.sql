-- Storage targets, uploads and the record index's objects. Portable SQL, like the initial schema.

-- One recording session (start to finalize) yields several rows: cycle cuts, formats. Rows made
-- before this migration get '' and are each treated as a session of their own.
ALTER TABLE recordings ADD COLUMN session_id TEXT NOT NULL DEFAULT '';
-- The record config's OssObjectPrefix template as stored (DescribeLiveStreamRecordContent).
ALTER TABLE recordings ADD COLUMN object_prefix TEXT NOT NULL DEFAULT '';
-- Made by CreateLiveStreamRecordIndexFiles rather than by a recording.
ALTER TABLE recordings ADD COLUMN generated BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX recordings_bucket_end ON recordings (oss_bucket, end_time);
CREATE INDEX recordings_bucket_object ON recordings (oss_bucket, oss_object);

-- Every stored object of an index row: the file, or a playlist with its init and segments.
CREATE TABLE recording_objects (
    record_id   TEXT    NOT NULL REFERENCES recordings (record_id),
    seq         INTEGER NOT NULL,
    bucket      TEXT    NOT NULL,
    object      TEXT    NOT NULL,
    -- 'file' | 'playlist' | 'init' | 'segment'
    kind        TEXT    NOT NULL,
    -- Wall clock of the object's first frame.
    start_time  BIGINT  NOT NULL,
    duration_ms BIGINT  NOT NULL,
    size        BIGINT  NOT NULL,
    PRIMARY KEY (record_id, seq)
);
CREATE INDEX recording_objects_bucket_object ON recording_objects (bucket, object);

-- Streams that ever published (CreateLiveStreamRecordIndexFiles tells "never ingested" apart).
CREATE TABLE streams (
    domain        TEXT   NOT NULL,
    app           TEXT   NOT NULL,
    stream        TEXT   NOT NULL,
    first_publish BIGINT NOT NULL,
    last_publish  BIGINT NOT NULL,
    PRIMARY KEY (domain, app, stream)
);

-- Id allocation that works on both backends: SQLite's INTEGER PRIMARY KEY autoincrements but
-- PostgreSQL needs a sequence, which SQLite lacks. `UPDATE … RETURNING` on this row is atomic
-- on both and never hands out an id twice.
CREATE TABLE counters (
    name  TEXT   NOT NULL PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('uploads', 0);

-- Objects waiting to be uploaded to a remote storage target (an outbox: survives restarts).
-- A row reserves its (bucket, object) name until it is finished.
CREATE TABLE uploads (
    id              BIGINT  NOT NULL PRIMARY KEY,
    bucket          TEXT    NOT NULL,
    object          TEXT    NOT NULL,
    spool_path      TEXT    NOT NULL UNIQUE,
    -- Uploads of one playlist: a member waits for every open member with a smaller id.
    group_id        TEXT,
    -- JSON, handled by the caller once the upload is done.
    completion      TEXT,
    size            BIGINT  NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at BIGINT  NOT NULL,
    last_error      TEXT,
    done            BOOLEAN NOT NULL,
    created_at      BIGINT  NOT NULL,
    UNIQUE (bucket, object)
);
CREATE INDEX uploads_bucket_id ON uploads (bucket, id);
CREATE INDEX uploads_group_id ON uploads (group_id, id);

-- Secrets the server makes for itself (e.g. the VOD URL signing key), shared by every node.
CREATE TABLE server_secrets (
    name       TEXT   NOT NULL PRIMARY KEY,
    value      TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
