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
    /// Delivers a stored file's completion, then drops its note.
    async fn complete(&self, spool_file: &Path, object: String, payload: serde_json::Value) {
        (self.on_complete)(Completed {
            bucket: self.bucket.clone(),
            object,
            payload,
        })
        .await;
        let note = layout::stored_note_path(spool_file);
        if let Err(err) = tokio::fs::remove_file(&note).await
            && err.kind() != io::ErrorKind::NotFound
        {
            // Left behind, it is delivered again at the next start: harmless (the index
            // ignores a row it has).
            tracing::warn!(note = %note.display(), %err, "cannot remove the note of a stored file");
        }
    }

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

/// Puts `spool_file` at the first free candidate of `name` under `root` with a hard link (a
/// link fails on an existing name, so no stored file is ever overwritten) and syncs the new
/// entry's directory. A candidate that already is this very file (same device and inode: a
/// store cut short by a crash, done again) counts as placed. The spool file stays. Blocking.
fn link_into_place(root: &Path, spool_file: &Path, name: &ObjectName) -> Result<String> {
    let spool_id = file_id(&std::fs::metadata(spool_file)?);
    for n in 0..=MAX_COLLISION_SUFFIX {
        let object = name.candidate(n);
        let path = root.join(&object);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        match std::fs::hard_link(spool_file, &path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                match std::fs::symlink_metadata(&path) {
                    Ok(m) if file_id(&m) == spool_id => {}
                    _ => continue,
                }
            }
            Err(e) => return Err(e.into()),
        }
        if let Some(parent) = path.parent() {
            sync_dir(parent)?;
        }
        return Ok(object);
    }
    Err(StorageError::NoFreeName(name.to_string()))
}

fn file_id(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

/// Removes a placed file's spool entry, durably. Blocking.
fn leave_spool(spool_file: &Path) -> Result<()> {
    match std::fs::remove_file(spool_file) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    if let Some(spool_dir) = spool_file.parent() {
        sync_dir(spool_dir)?;
    }
    Ok(())
}

/// A stored file whose completion is not delivered yet (see [`layout::stored_note_path`]).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct StoredNote {
    object: String,
    payload: serde_json::Value,
}

/// Largest note read back; a larger file is not ours.
const MAX_NOTE_BYTES: u64 = 16 * 1024 * 1024;

/// Writes the note of `spool_file` atomically and durably (temp file, fsync, rename, directory
/// fsync). Blocking.
fn write_note(spool_file: &Path, note: &StoredNote) -> Result<()> {
    let path = layout::stored_note_path(spool_file);
    let mut tmp = path.clone().into_os_string();
    tmp.push(".tmp");
    let json = serde_json::to_vec(note).map_err(io::Error::other)?;
    let written = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        io::Write::write_all(&mut file, &json)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    if let Err(err) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(err.into());
    }
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

fn read_note(path: &Path) -> Result<StoredNote> {
    let mut data = Vec::new();
    io::Read::read_to_end(
        &mut io::Read::take(std::fs::File::open(path)?, MAX_NOTE_BYTES),
        &mut data,
    )?;
    serde_json::from_slice(&data).map_err(|e| StorageError::Io(io::Error::other(e)))
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
        // In place first, then (with a completion) noted, then out of the spool: a crash at
        // any point leaves either the spool file (recovery stores it again, to the same name)
        // or the note (`resume` delivers the completion).
        let note = completion.clone();
        let file = spool_file.clone();
        let object = blocking(move || {
            let object = link_into_place(&root, &file, &name)?;
            if let Some(payload) = note {
                write_note(
                    &file,
                    &StoredNote {
                        object: object.clone(),
                        payload,
                    },
                )?;
            }
            leave_spool(&file)?;
            Ok(object)
        })
        .await?;
        if let Some(payload) = completion {
            self.complete(&spool_file, object.clone(), payload).await;
        }
        Ok(object)
    }

    async fn resume(&self) -> Result<usize> {
        let dir = self.spool.dir().to_owned();
        let notes = blocking(move || {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(e.into()),
            };
            let mut notes: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| Spool::is_stored_note(p))
                .collect();
            notes.sort();
            Ok(notes)
        })
        .await?;
        let mut resumed = 0;
        for note_path in notes {
            let spool_file = note_path.with_extension("");
            let (path, file) = (note_path.clone(), spool_file.clone());
            let note = match blocking(move || {
                let note = read_note(&path)?;
                // The note is written once the file is in place: the spool entry may go.
                leave_spool(&file)?;
                Ok(note)
            })
            .await
            {
                Ok(note) => note,
                Err(err) => {
                    tracing::warn!(note = %note_path.display(), %err,
                        "cannot read the note of a stored file; it is left in place");
                    continue;
                }
            };
            tracing::info!(bucket = %self.bucket, object = %note.object,
                "delivering the completion of a file stored just before a crash");
            self.complete(&spool_file, note.object, note.payload).await;
            resumed += 1;
        }
        Ok(resumed)
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
    async fn a_store_done_again_after_a_crash_keeps_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let (t, seen) = target(dir.path());
        let name = ObjectName::new("rec/a/x".into(), "mp4").unwrap();
        let p = t.spool().new_path("mp4");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, b"media").unwrap();
        // The crash came after the link: the file is in place and still in the spool.
        assert_eq!(
            link_into_place(dir.path(), &p, &name).unwrap(),
            "rec/a/x.mp4"
        );
        let again = t
            .store(StoreRequest {
                spool_file: p.clone(),
                name: name.clone(),
                group: None,
                completion: Some(serde_json::json!({"id": 1})),
            })
            .await
            .unwrap();
        assert_eq!(again, "rec/a/x.mp4", "same name, no _1 copy");
        assert!(!p.exists());
        assert!(!layout::stored_note_path(&p).exists());
        assert!(!dir.path().join("rec/a/x_1.mp4").exists());
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn resume_delivers_a_completion_noted_before_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let name = ObjectName::new("rec/a/y".into(), "mp4").unwrap();
        let (t, seen) = target(dir.path());
        let p = t.spool().new_path("mp4");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, b"media").unwrap();
        // The crash came after the note, before the spool entry went and the hook ran.
        let object = link_into_place(dir.path(), &p, &name).unwrap();
        let note = StoredNote {
            object,
            payload: serde_json::json!({"id": 2}),
        };
        write_note(&p, &note).unwrap();
        // An unreadable note is left alone.
        let bad = t.spool().new_path("mp4");
        std::fs::write(layout::stored_note_path(&bad), b"{").unwrap();

        assert_eq!(t.resume().await.unwrap(), 1);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].object, "rec/a/y.mp4");
        assert_eq!(seen[0].payload["id"], 2);
        assert!(!p.exists());
        assert!(!layout::stored_note_path(&p).exists());
        assert!(layout::stored_note_path(&bad).exists());
        assert_eq!(
            std::fs::read(dir.path().join("rec/a/y.mp4")).unwrap(),
            b"media"
        );
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
