//! The dashboard (issue 14, points 1 and 2) used as a person would: Debian's headless chromium,
//! driven by playwright-core (tests/browser/dashboard.mjs), logs in with the access key,
//! refuses a wrong one, sees the stream ffmpeg publishes, stops it and cancels the delay, finds
//! the recordings and plays each to its end. Screenshots are kept in
//! target/test-artifacts/dashboard/.
// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};

use support::receiver::{Behaviour, Receiver};
use support::*;

const DOMAIN: &str = "live.liverec.local";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn an_operator_logs_in_stops_a_recording_and_plays_it() {
    browser::require_browser();
    // The hls.js built into the dashboard is the one tests/browser/package.json pins.
    let vendored = std::fs::read(repo_root().join("crates/api/ui/vendor/hls.min.js")).unwrap();
    let pinned =
        std::fs::read(repo_root().join("tests/browser/node_modules/hls.js/dist/hls.min.js"))
            .unwrap();
    assert!(
        vendored == pinned,
        "crates/api/ui/vendor/hls.min.js differs from the npm package: copy it over"
    );
    // A long DelayTime: after `stop` the recording stays paused until `cancel_delay`.
    let server = Server::start_with_env(
        "[record]\ndelay_secs = 600\nformats = [{ format = \"mp4\" }, { format = \"m3u8\" }]\n",
        &api::key_env(),
    );
    let _publisher = Killed(publish_child(
        Path::new("ffmpeg"),
        &asset("h264_aac.flv"),
        &server.url("live", "cam1"),
        &["-stream_loop", "-1"],
    ));
    server.wait_for_lines(
        &["recording started", "/live/cam1"],
        1,
        std::time::Duration::from_secs(60),
    );
    // A few seconds of media, so the recordings have something to play.
    std::thread::sleep(std::time::Duration::from_secs(4));
    let shots = repo_root().join("target/test-artifacts/dashboard");
    let _ = std::fs::remove_dir_all(&shots);
    let (key_id, secret) = (api::KEY_ID, api::KEY_SECRET);
    // Callbacks go to a receiver that refuses them all, so the Callbacks tab has a failed one
    // to send again.
    let receiver = Receiver::start(Behaviour {
        fail_first: usize::MAX,
        ..Behaviour::default()
    });
    api::ok(
        server.api_addr(),
        "AddLiveRecordNotifyConfig",
        &[
            ("DomainName", DOMAIN),
            ("NotifyUrl", &receiver.url("/cb")),
            ("NeedStatusNotify", "true"),
        ],
    );
    let output = Command::new("node")
        .arg(repo_root().join("tests/browser/dashboard.mjs"))
        .arg(format!("http://{}", server.api_addr()))
        .args(["--key-id", key_id, "--secret", secret])
        .args(["--stream", &format!("{DOMAIN}/live/cam1")])
        .arg("--shots")
        .arg(&shots)
        .stdin(Stdio::null())
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let result: serde_json::Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "dashboard.mjs printed no JSON:\n{stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    eprintln!("[dashboard.mjs] {result:#}");
    assert_eq!(result["ok"], true, "{}", result["error"]);
    assert!(output.status.success());
    for shot in [
        "login-refused",
        "dashboard-live",
        "stopped",
        "recordings",
        "played-mp4",
        "played-m3u8",
        "callbacks",
    ] {
        assert!(
            shots.join(format!("{shot}.png")).exists(),
            "no screenshot {shot}"
        );
    }
    // What the browser did went through the API: one stop and one cancel_delay, logged with
    // the dashboard's key, and the files it played are indexed.
    let commands = server.log_lines(&["api request", "RealTimeRecordCommand", key_id]);
    assert_eq!(commands.len(), 2, "{commands:#?}");
    let rows = index_rows(&server.data_dir(), DOMAIN, "live", "cam1");
    assert_eq!(rows.len(), 2, "{rows:?}");
    // The secret is in no log line.
    assert!(!server.log_contains(secret));
    assert!(server.log_contains("dashboard login refused"));
    let event_id = result["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|s| s["eventId"].as_str())
        .unwrap();
    server.wait_for_lines(
        &["dashboard: callback queued again", event_id, "resent=1"],
        1,
        std::time::Duration::from_secs(5),
    );
}
