-- ForbidLiveStream's block list and the publish history of DescribeLiveStreamsPublishList.
-- Portable SQL, like the initial schema.
CREATE TABLE forbidden_streams (
    -- Lowercase domain; app and stream as published.
    domain     TEXT   NOT NULL,
    app        TEXT   NOT NULL,
    stream     TEXT   NOT NULL,
    -- Unix milliseconds: publishes are refused until then (ResumeTime).
    resume_at  BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (domain, app, stream)
);

CREATE TABLE publish_history (
    -- Random, made by the node that accepted the publish.
    publish_id  TEXT   NOT NULL PRIMARY KEY,
    -- The node (data directory) that accepted it: a node starting after a crash closes its
    -- own open rows, never another node's.
    node        TEXT   NOT NULL,
    domain      TEXT   NOT NULL,
    app         TEXT   NOT NULL,
    stream      TEXT   NOT NULL,
    -- ip:port of the publisher.
    client_addr TEXT   NOT NULL,
    -- The publish URL without its query (no signatures or tokens are kept).
    publish_url TEXT   NOT NULL,
    -- Unix milliseconds; stopped_at is NULL while the publish goes on.
    started_at  BIGINT NOT NULL,
    stopped_at  BIGINT
);
CREATE INDEX publish_history_by_domain ON publish_history (domain, started_at);
