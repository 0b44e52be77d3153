-- Triggered ("lazy") pull configs: SetLiveLazyPullStreamInfoConfig & co. Portable SQL.
CREATE TABLE lazy_pull_configs (
    -- Lowercase playback domain.
    domain         TEXT   NOT NULL,
    -- The app it applies to; 'ali_all_app' for every app of the domain.
    app            TEXT   NOT NULL,
    -- Origins, host[:port], several separated by ';' (tried in order).
    pull_domain    TEXT   NOT NULL,
    -- The origin's app; '' for the played app.
    pull_app       TEXT   NOT NULL,
    -- rtmp | httpflv
    pull_protocol  TEXT   NOT NULL,
    transcode_lazy TEXT   NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (domain, app)
);

-- Scheduled pulls: AddLivePullStreamInfoConfig & co. The source is pulled and recorded during
-- [start_at, end_at) whether or not anyone plays.
CREATE TABLE pull_configs (
    domain       TEXT   NOT NULL,
    app          TEXT   NOT NULL,
    stream       TEXT   NOT NULL,
    -- Source URLs, several separated by ';' (tried in order).
    source_url   TEXT   NOT NULL,
    -- Unix milliseconds.
    start_at     BIGINT NOT NULL,
    end_at       BIGINT NOT NULL,
    -- The source being pulled now ('' when none): DescribeLivePullStreamConfig's SourceUsing.
    source_using TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (domain, app, stream)
);
