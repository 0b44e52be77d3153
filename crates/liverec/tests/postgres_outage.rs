//! PostgreSQL stopped and started again under a recording server (issue 11.4). Needs a
//! cluster this test may stop: `scripts/test.sh` runs it under `scripts/with-postgres.sh`
//! (`LIVEREC_TEST_PG`, `LIVEREC_TEST_PG_CTL`) with `--run-ignored only`.
// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::receiver::{Behaviour, Receiver};
use support::*;

const T: Duration = Duration::from_secs(60);
const DOMAIN: &str = "live.liverec.local";

fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run under scripts/with-postgres.sh"))
}

fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args(["-X", "-q", "-t", "-A", url, "-c", sql])
        .output()
        .unwrap();
    assert!(out.status.success(), "psql {sql}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn ctl(action: &str) {
    let status = Command::new(env("LIVEREC_TEST_PG_CTL"))
        .arg(action)
        .status()
        .unwrap();
    assert!(status.success(), "pg_ctl {action}");
}

/// The value of an unlabelled gauge in `/metrics`.
fn gauge(server: &Server, name: &str) -> Option<u64> {
    let (status, text) = server.http_get("/metrics");
    if status != 200 {
        return None;
    }
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + T;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
#[ignore = "stops its PostgreSQL: run by scripts/test.sh under scripts/with-postgres.sh"]
fn files_finished_while_postgresql_is_down_are_indexed_and_announced_once_it_is_back() {
    let base = env("LIVEREC_TEST_PG");
    let database = format!("liverec_outage_{}", std::process::id());
    psql(&base, &format!("CREATE DATABASE {database}"));
    let url = match base.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{database}"),
        None => panic!("LIVEREC_TEST_PG has no database: {base}"),
    };
    let receiver = Receiver::start(Behaviour::default());
    let mut server = Server::start_with_env(
        &format!(
            "database_url = {url:?}\n[record]\ndelay_secs = 1\n\
             formats = [{{ format = \"mp4\", cycle_secs = 3 }}]\n\
             [notify]\nretry_max_interval_secs = 1\n"
        ),
        &api::key_env(),
    );
    api::ok(
        server.api_addr(),
        "AddLiveRecordNotifyConfig",
        &[("DomainName", DOMAIN), ("NotifyUrl", &receiver.url("/cb"))],
    );
    let mut publisher = publish_child(
        Path::new("ffmpeg"),
        &asset("h264_aac.flv"),
        &server.url("live", "pg"),
        &["-stream_loop", "-1"],
    );
    let delivered = |receiver: &Receiver| {
        receiver
            .callbacks()
            .iter()
            .filter(|r| r.status == 200 && r.json().get("uri").is_some())
            .map(|r| r.json()["uri"].as_str().unwrap_or_default().to_owned())
            .collect::<std::collections::BTreeSet<String>>()
    };
    wait_for("the first file's callback", || {
        !delivered(&receiver).is_empty()
    });

    // The database goes away for 8 s: files keep finishing (every 3 s), their rows wait.
    ctl("stop");
    wait_for("a file waiting for its index row", || {
        gauge(&server, "liverec_index_waiting").is_some_and(|n| n >= 1)
    });
    server.wait_for_log("cannot index a finished recording yet", T);
    std::thread::sleep(Duration::from_secs(5));
    assert!(server.is_running(), "the server rides out the outage");
    ctl("start");
    wait_for("the waiting rows to be written", || {
        gauge(&server, "liverec_index_waiting") == Some(0)
    });
    server.wait_for_log("recording indexed after the database came back", T);
    std::thread::sleep(Duration::from_secs(2));
    let _ = publisher.kill();
    let _ = publisher.wait();

    // The last file ends 1 s (DelayTime) after the publisher.
    server.wait_for_log("recording ends", T);

    // Every file is indexed exactly once and announced (the outbox is in the same database).
    let rows = || -> Vec<String> {
        psql(&url, "SELECT oss_object FROM recordings ORDER BY 1")
            .lines()
            .map(str::to_owned)
            .collect()
    };
    wait_for("every file's row and callback", || {
        let (rows, files, sent) = (
            rows(),
            server.recorded_for("live", "pg", "mp4"),
            delivered(&receiver),
        );
        rows.len() == files.len() && rows.iter().all(|o| sent.contains(o))
    });
    assert!(server.terminate(T), "exits cleanly");
    let files = server.recorded_for("live", "pg", "mp4");
    let mut objects = rows();
    let indexed = objects.len();
    objects.dedup();
    assert_eq!(objects.len(), indexed, "no row twice");
    assert_eq!(
        indexed,
        files.len(),
        "one row per file: {objects:?} {files:?}"
    );
    assert!(
        indexed >= 4,
        "files before, during and after the outage: {objects:?}"
    );
    for f in &files {
        let object = f.to_string_lossy();
        assert!(
            objects.iter().any(|o| object.ends_with(o.as_str())),
            "{object} has no row"
        );
        assert_decodes_cleanly(Path::new("ffmpeg"), f);
    }
    psql(&base, &format!("DROP DATABASE {database} WITH (FORCE)"));
}
