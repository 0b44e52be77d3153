//! Test support shared by the workspace's test suites (a dev-dependency, never shipped): where
//! the repository and its test assets are, which ffmpeg to run, and the checks every suite
//! makes of a recorded or muxed file. One copy, so the suites cannot drift apart.
// Test support: a failure here is a failed test, and says why.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// A pre-encoded test asset under `tests/.assets`; when one is missing,
/// `scripts/make-test-assets.sh` makes them all (once per test process; `scripts/test.sh` runs
/// it before the tests).
pub fn asset(name: &str) -> PathBuf {
    static MADE: OnceLock<()> = OnceLock::new();
    let path = repo_root().join("tests/.assets").join(name);
    if !path.exists() {
        MADE.get_or_init(|| {
            let status = Command::new("bash")
                .arg(repo_root().join("scripts/make-test-assets.sh"))
                .env("FFMPEG9", ffmpeg9())
                .status()
                .expect("run scripts/make-test-assets.sh");
            assert!(status.success(), "scripts/make-test-assets.sh failed");
        });
    }
    assert!(
        path.exists(),
        "test asset {} is missing after scripts/make-test-assets.sh",
        path.display()
    );
    path
}

/// The bytes of a test asset (see [`asset`]).
pub fn asset_bytes(name: &str) -> Vec<u8> {
    let path = asset(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// ffmpeg 9 (Enhanced RTMP/FLV, HEVC, AV1): `LIVEREC_FFMPEG9`, else imageio-ffmpeg's binary in
/// the repository's venv (`scripts/test.sh` sets both up). Debian's ffmpeg is plain `ffmpeg`.
pub fn ffmpeg9() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Some(path) = std::env::var_os("LIVEREC_FFMPEG9") {
            return PathBuf::from(path);
        }
        let python = repo_root().join(".venv/bin/python");
        let out = Command::new(&python)
            .args([
                "-c",
                "import imageio_ffmpeg as i; print(i.get_ffmpeg_exe())",
            ])
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "ffmpeg 9 not found: set LIVEREC_FFMPEG9 or run scripts/test.sh to create {} ({e})",
                    python.display()
                )
            });
        assert!(
            out.status.success(),
            "imageio_ffmpeg is not installed in {}",
            python.display()
        );
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        assert!(path.exists(), "ffmpeg 9 missing at {}", path.display());
        path
    })
    .clone()
}

/// Decodes all of `file` with `ffmpeg` and returns what it reported (empty when clean). Frames
/// keep their own timestamps (`-fps_mode passthrough`, a 90 kHz encoder time base): plain
/// `-f null` re-times them and reports a live encoder's timestamp jitter as an error.
pub fn decode_errors(ffmpeg: &Path, file: &Path) -> String {
    let out = Command::new(ffmpeg)
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args([
            "-fps_mode",
            "passthrough",
            "-enc_time_base:v",
            "1:90000",
            "-f",
            "null",
            "-",
        ])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", ffmpeg.display()));
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    if out.status.success() {
        stderr
    } else {
        format!("exit {}: {stderr}", out.status)
    }
}

/// Decodes all of `file` and fails the test if ffmpeg reports anything (see [`decode_errors`]).
pub fn assert_decodes_cleanly(ffmpeg: &Path, file: &Path) {
    let errors = decode_errors(ffmpeg, file);
    assert!(
        errors.is_empty(),
        "decoding {} reported errors:\n{errors}",
        file.display()
    );
}

/// What Debian's ffprobe sees of a file: its streams' codec names (in stream order; an HLS
/// playlist lists each stream once) and the container's duration in seconds.
pub fn ffprobe_streams(file: &Path) -> (Vec<String>, f64) {
    let probe = |entries: &str| {
        let out = Command::new("ffprobe")
            .args(["-v", "error", "-show_entries", entries, "-of", "csv=p=0"])
            .arg(file)
            .output()
            .expect("run ffprobe (Debian's ffmpeg)");
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "ffprobe {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // HLS streams are listed twice (in their program and on their own): one per index.
    let mut streams = BTreeMap::new();
    for line in probe("stream=index,codec_name").lines() {
        if let Some((index, name)) = line.split_once(',') {
            streams.insert(index.parse::<u32>().unwrap_or(u32::MAX), name.to_owned());
        }
    }
    let duration = probe("format=duration").trim().parse().unwrap_or(f64::NAN);
    (streams.into_values().collect(), duration)
}
