//! CPU time of a process from `/proc/<pid>/stat` (all its threads), to turn a request rate into
//! requests per second per core.

use std::path::PathBuf;
use std::time::Instant;

/// Clock ticks per second of `/proc` times (USER_HZ, 100 on every mainstream Linux ABI).
pub const USER_HZ: f64 = 100.0;

#[derive(Debug, thiserror::Error)]
pub enum CpuError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}: unexpected format")]
    Format(PathBuf),
}

/// A process to watch: a pid, or this process.
#[derive(Debug, Clone, Copy)]
pub enum Proc {
    Pid(u32),
    Myself,
}

impl Proc {
    fn stat_path(self) -> PathBuf {
        match self {
            Self::Pid(p) => PathBuf::from(format!("/proc/{p}/stat")),
            Self::Myself => PathBuf::from("/proc/self/stat"),
        }
    }

    /// utime + stime in seconds.
    pub fn cpu_secs(self) -> Result<f64, CpuError> {
        let path = self.stat_path();
        let text = std::fs::read_to_string(&path).map_err(|source| CpuError::Read {
            path: path.clone(),
            source,
        })?;
        parse_stat_cpu(&text).ok_or(CpuError::Format(path))
    }
}

/// utime + stime (seconds) from the text of a `stat` file. The command name may contain spaces
/// and parentheses, so fields are counted after the last `)`.
pub fn parse_stat_cpu(text: &str) -> Option<f64> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 of the file, so utime (14) and stime (15) are at 11, 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// A CPU-time reading at an instant.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    at: Instant,
    secs: f64,
}

impl Mark {
    pub fn take(p: Proc) -> Result<Self, CpuError> {
        Ok(Self {
            secs: p.cpu_secs()?,
            at: Instant::now(),
        })
    }

    /// CPU used between two marks, as a fraction of one core (1.0 = one core busy).
    pub fn cores_since(&self, earlier: &Mark) -> f64 {
        let wall = self.at.duration_since(earlier.at).as_secs_f64();
        if wall <= 0.0 {
            return 0.0;
        }
        (self.secs - earlier.secs) / wall
    }
}

/// The 1-minute load average, to tell a busy machine in the report.
pub fn loadavg() -> Option<String> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_with_an_awkward_name() {
        let line =
            "1234 (we ird) name)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 1 2 3";
        assert_eq!(parse_stat_cpu(line), Some(3.0));
        assert_eq!(parse_stat_cpu("garbage"), None);
        assert_eq!(parse_stat_cpu("1 (x) S 1"), None);
    }

    #[test]
    fn reads_its_own_cpu() {
        let a = Proc::Myself.cpu_secs().unwrap();
        assert!(a >= 0.0);
    }
}
