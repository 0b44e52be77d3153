//! Storage targets. Today: a local directory per bucket, `{data}/buckets/{bucket}/`, with the
//! recordings in progress in its `.spool/`, so finishing a file is a rename inside one
//! filesystem, never a copy.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Name of the in-progress directory inside a target.
pub const SPOOL_DIR: &str = ".spool";
/// How many `_1`, `_2` … suffixes are tried for a name that is taken.
const MAX_COLLISION_SUFFIX: u32 = 10_000;

/// A local storage target.
#[derive(Clone, Debug)]
pub struct LocalTarget {
    bucket: String,
    endpoint: String,
    root: PathBuf,
}

static SPOOL_COUNTER: AtomicU64 = AtomicU64::new(0);

impl LocalTarget {
    pub fn new(bucket: impl Into<String>, root: impl Into<PathBuf>) -> Self {
        Self {
            bucket: bucket.into(),
            endpoint: String::new(),
            root: root.into(),
        }
    }

    /// The target of `bucket` under a data directory.
    pub fn in_data_dir(data_dir: &Path, bucket: &str) -> Self {
        Self::new(bucket, data_dir.join("buckets").join(bucket))
    }

    /// The same target, reported with `endpoint` (a config's OssEndpoint).
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into();
        self
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn spool_dir(&self) -> PathBuf {
        self.root.join(SPOOL_DIR)
    }

    /// A fresh, unique spool path with the given extension.
    pub fn new_spool_path(&self, extension: &str) -> PathBuf {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros())
            .unwrap_or(0);
        let n = SPOOL_COUNTER.fetch_add(1, Ordering::Relaxed);
        self.spool_dir()
            .join(format!("{now:x}-{}-{n}.{extension}", std::process::id()))
    }

    pub fn object_path(&self, object: &str) -> PathBuf {
        self.root.join(object)
    }

    /// Moves a finished spool file to `object` (a sanitised relative name with extension). If
    /// the name is taken, `_1`, `_2` … is added before the extension. Returns the name used.
    /// Blocking: call from a blocking context.
    pub fn commit(&self, spool_path: &Path, object: &str) -> io::Result<String> {
        let (stem, ext) = match object.rsplit_once('.') {
            Some((stem, ext)) if !ext.contains('/') => (stem, Some(ext)),
            _ => (object, None),
        };
        for n in 0..=MAX_COLLISION_SUFFIX {
            let name = match (n, ext) {
                (0, _) => object.to_owned(),
                (n, Some(ext)) => format!("{stem}_{n}.{ext}"),
                (n, None) => format!("{stem}_{n}"),
            };
            let path = self.object_path(&name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            // A hard link fails if the name exists, so no finished file is ever overwritten.
            match std::fs::hard_link(spool_path, &path) {
                Ok(()) => {
                    std::fs::remove_file(spool_path)?;
                    return Ok(name);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("no free name for {object}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_never_overwrites_and_adds_suffixes() {
        let dir = tempfile::tempdir().unwrap();
        let t = LocalTarget::new("b", dir.path());
        std::fs::create_dir_all(t.spool_dir()).unwrap();
        let mut names = vec![];
        for i in 0..3 {
            let p = t.new_spool_path("mp4");
            std::fs::write(&p, format!("{i}")).unwrap();
            names.push(t.commit(&p, "rec/a/x.mp4").unwrap());
            assert!(!p.exists());
        }
        assert_eq!(names, vec!["rec/a/x.mp4", "rec/a/x_1.mp4", "rec/a/x_2.mp4"]);
        assert_eq!(
            std::fs::read_to_string(t.object_path("rec/a/x.mp4")).unwrap(),
            "0"
        );
    }
}
