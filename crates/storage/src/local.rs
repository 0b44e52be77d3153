//! A local directory target: `{data_dir}/buckets/{bucket}/` (or a configured path), with its
//! spool inside its own root, so storing a finished file is a rename in one file system,
//! never a copy.

use std::io::{self, SeekFrom};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::layout::{self, MAX_COLLISION_SUFFIX, ObjectName, Spool};
use crate::{
    ByteRange, Completed, ObjectRead, OnComplete, Result, StorageError, StoreRequest, Target,
};

/// Read size of object streams.
const READ_CHUNK: usize = 64 * 1024;

pub struct LocalTarget {
    bucket: String,
    root: PathBuf,
    spool: Spool,
    on_complete: OnComplete,
}

impl std::fmt::Debug for LocalTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTarget")
            .field("bucket", &self.bucket)
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl LocalTarget {
    pub fn new(
        bucket: impl Into<String>,
        root: impl Into<PathBuf>,
        on_complete: OnComplete,
    ) -> Self {
        let root = root.into();
        Self {
            bucket: bucket.into(),
            spool: Spool::in_root(&root),
            root,
            on_complete,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of an object (a sanitised relative name).
    fn object_path(&self, object: &str) -> Result<PathBuf> {
        Ok(self.root.join(layout::sanitize(object)?))
    }
}

/// Makes a directory's entries durable (a rename, link or unlink in it survives power loss).
/// Blocking.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Moves `spool_file` to the first free candidate of `name` under `root`, durably (both
/// directories are synced). Blocking.
fn link_into_place(root: &Path, spool_file: &Path, name: &ObjectName) -> Result<String> {
    for n in 0..=MAX_COLLISION_SUFFIX {
        let object = name.candidate(n);
        let path = root.join(&object);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // A hard link fails if the name exists, so no stored file is ever overwritten.
        match std::fs::hard_link(spool_file, &path) {
            Ok(()) => {
                if let Some(parent) = path.parent() {
                    sync_dir(parent)?;
                }
                std::fs::remove_file(spool_file)?;
                if let Some(spool_dir) = spool_file.parent() {
                    sync_dir(spool_dir)?;
                }
                return Ok(object);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StorageError::NoFreeName(name.to_string()))
}

/// Reads `range` of the file at `path`, which holds `object` (named in a `NotFound`).
pub(crate) async fn read_file(
    path: &Path,
    object: &str,
    range: Option<ByteRange>,
) -> Result<ObjectRead> {
    let mut file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(StorageError::NotFound(object.to_owned()));
        }
        Err(e) => return Err(e.into()),
    };
    let meta = file.metadata().await?;
    if !meta.is_file() {
        return Err(StorageError::NotFound(object.to_owned()));
    }
    let size = meta.len();
    let range = match range {
        Some(r) => r.resolve(size)?,
        None => 0..size,
    };
    file.seek(SeekFrom::Start(range.start)).await?;
    let body =
        tokio_util::io::ReaderStream::with_capacity(file.take(range.end - range.start), READ_CHUNK)
            .boxed();
    Ok(ObjectRead { size, range, body })
}

/// Removes the empty directories between `path`'s parent and `root` (after a delete).
fn remove_empty_parents(root: &Path, path: &Path) {
    let mut dir = path.parent();
    while let Some(d) = dir {
        if d == root || !d.starts_with(root) || std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StorageError::Io(io::Error::other(e)))?
}

#[async_trait::async_trait]
impl Target for LocalTarget {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    fn spool(&self) -> &Spool {
        &self.spool
    }

    async fn store(&self, request: StoreRequest) -> Result<String> {
        let root = self.root.clone();
        let StoreRequest {
            spool_file,
            name,
            completion,
            group: _,
        } = request;
        let object = blocking(move || link_into_place(&root, &spool_file, &name)).await?;
        if let Some(payload) = completion {
            (self.on_complete)(Completed {
                bucket: self.bucket.clone(),
                object: object.clone(),
                payload,
            })
            .await;
        }
        Ok(object)
    }

    async fn holds(&self, _spool_file: &Path) -> Result<bool> {
        // A stored file has left the spool.
        Ok(false)
    }

    async fn read(&self, object: &str, range: Option<ByteRange>) -> Result<ObjectRead> {
        read_file(&self.object_path(object)?, object, range).await
    }

    async fn write(&self, object: &str, data: Bytes) -> Result<()> {
        let path = self.object_path(object)?;
        let tmp = self.spool.new_path("tmp");
        blocking(move || {
            for dir in [tmp.parent(), path.parent()].into_iter().flatten() {
                std::fs::create_dir_all(dir)?;
            }
            let mut file = std::fs::File::create(&tmp)?;
            io::Write::write_all(&mut file, &data)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            if let Some(parent) = path.parent() {
                sync_dir(parent)?;
            }
            Ok(())
        })
        .await
    }

    async fn delete(&self, object: &str) -> Result<()> {
        let path = self.object_path(object)?;
        let root = self.root.clone();
        blocking(move || {
            match std::fs::remove_file(&path) {
                Ok(()) => remove_empty_parents(&root, &path),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn target(root: &Path) -> (LocalTarget, Arc<Mutex<Vec<Completed>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let hook: OnComplete = Arc::new(move |c| {
            sink.lock().unwrap().push(c);
            Box::pin(async {})
        });
        (LocalTarget::new("b", root, hook), seen)
    }

    #[tokio::test]
    async fn store_never_overwrites_and_adds_suffixes() {
        let dir = tempfile::tempdir().unwrap();
        let (t, seen) = target(dir.path());
        let name = ObjectName::new("rec/a/x".into(), "cmaf.m3u8").unwrap();
        let mut names = vec![];
        for i in 0..3 {
            let p = t.spool().new_path("m3u8");
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, format!("{i}")).unwrap();
            let completion = (i == 2).then(|| serde_json::json!({"i": i}));
            names.push(
                t.store(StoreRequest {
                    spool_file: p.clone(),
                    name: name.clone(),
                    group: None,
                    completion,
                })
                .await
                .unwrap(),
            );
            assert!(!p.exists());
        }
        assert_eq!(
            names,
            vec![
                "rec/a/x.cmaf.m3u8",
                "rec/a/x_1.cmaf.m3u8",
                "rec/a/x_2.cmaf.m3u8"
            ]
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("rec/a/x.cmaf.m3u8")).unwrap(),
            "0"
        );
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].object, "rec/a/x_2.cmaf.m3u8");
        assert_eq!(seen[0].payload["i"], 2);
    }

    #[tokio::test]
    async fn reads_ranges_writes_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let (t, _) = target(dir.path());
        t.write("a/b/c.m3u8", Bytes::from_static(b"0123456789"))
            .await
            .unwrap();
        let read = |range| crate::read_to_vec_range(&t, "a/b/c.m3u8", range);
        assert_eq!(read(None).await.unwrap(), b"0123456789");
        let r = ByteRange::From {
            start: 2,
            end: Some(5),
        };
        assert_eq!(read(Some(r)).await.unwrap(), b"234");
        assert_eq!(read(Some(ByteRange::Suffix(3))).await.unwrap(), b"789");
        let beyond = ByteRange::From {
            start: 10,
            end: None,
        };
        assert!(matches!(
            t.read("a/b/c.m3u8", Some(beyond)).await,
            Err(StorageError::Range { .. })
        ));
        assert!(t.read("a/../x", None).await.is_err());
        t.delete("a/b/c.m3u8").await.unwrap();
        assert!(t.read("a/b/c.m3u8", None).await.unwrap_err().is_not_found());
        // Empty directories go with the last object; deleting again is fine.
        assert!(!dir.path().join("a").exists());
        t.delete("a/b/c.m3u8").await.unwrap();
    }
}
