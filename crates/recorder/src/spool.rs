//! A file being written in a target's spool: muxed bytes are buffered, handed to the OS at
//! least every `flush_every` and fsynced at least every `sync_every`, off the async runtime.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use liverec_mux::Patch;

/// Buffered bytes beyond which a write is due whatever the clock says.
const MAX_BUFFERED_BYTES: usize = 4 * 1024 * 1024;

/// How often spooled data reaches the OS and the disk (DESIGN.md "Durability": 1 s and 5 s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpoolPolicy {
    pub flush_every: Duration,
    pub sync_every: Duration,
}

impl Default for SpoolPolicy {
    fn default() -> Self {
        Self {
            flush_every: Duration::from_secs(1),
            sync_every: Duration::from_secs(5),
        }
    }
}

fn blocking_failed(e: tokio::task::JoinError) -> io::Error {
    io::Error::other(e)
}

/// One spool file. Muxers append to [`SpoolFile::buf`]; [`SpoolFile::maybe_flush`] writes.
#[derive(Debug)]
pub struct SpoolFile {
    path: PathBuf,
    file: Option<File>,
    pub buf: BytesMut,
    written: u64,
    policy: SpoolPolicy,
    last_flush: Instant,
    last_sync: Instant,
}

impl SpoolFile {
    pub async fn create(path: PathBuf, policy: SpoolPolicy) -> io::Result<Self> {
        let p = path.clone();
        let file = tokio::task::spawn_blocking(move || {
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent)?;
            }
            File::options().write(true).create_new(true).open(&p)
        })
        .await
        .map_err(blocking_failed)??;
        let now = Instant::now();
        Ok(Self {
            path,
            file: Some(file),
            buf: BytesMut::with_capacity(64 * 1024),
            written: 0,
            policy,
            last_flush: now,
            last_sync: now,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes written so far, buffered ones included.
    pub fn len(&self) -> u64 {
        self.written + self.buf.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the buffer if the flush interval passed or the buffer is large; fsyncs if the
    /// sync interval passed.
    pub async fn maybe_flush(&mut self, now: Instant) -> io::Result<()> {
        let due = now.duration_since(self.last_flush) >= self.policy.flush_every
            || self.buf.len() >= MAX_BUFFERED_BYTES;
        if due {
            let sync = now.duration_since(self.last_sync) >= self.policy.sync_every;
            self.flush(sync).await?;
        }
        Ok(())
    }

    /// Writes the buffer (and fsyncs if `sync`).
    pub async fn flush(&mut self, sync: bool) -> io::Result<()> {
        let data = self.buf.split().freeze();
        self.run(move |file| write_and_sync(file, &data, sync))
            .await?;
        let now = Instant::now();
        self.last_flush = now;
        if sync {
            self.last_sync = now;
        }
        Ok(())
    }

    async fn run<F>(&mut self, op: F) -> io::Result<u64>
    where
        F: FnOnce(&mut File) -> io::Result<u64> + Send + 'static,
    {
        let mut file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("spool file is closed"))?;
        let (file, result) = tokio::task::spawn_blocking(move || {
            let result = op(&mut file);
            (file, result)
        })
        .await
        .map_err(blocking_failed)?;
        self.file = Some(file);
        let n = result?;
        self.written += n;
        Ok(n)
    }

    /// Writes what is buffered, applies `patches` in place, fsyncs and closes. Returns the
    /// path and the file size.
    pub async fn finish(mut self, patches: Vec<Patch>) -> io::Result<(PathBuf, u64)> {
        let data = self.buf.split().freeze();
        self.run(move |file| {
            let n = write_and_sync(file, &data, false)?;
            for patch in &patches {
                file.write_all_at(&patch.bytes, patch.offset)?;
            }
            file.sync_all()?;
            Ok(n)
        })
        .await?;
        Ok((self.path.clone(), self.written))
    }

    /// Abandons the file, removing it from the spool.
    pub async fn discard(mut self) {
        self.file = None;
        let path = self.path.clone();
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_file(path)).await;
    }
}

fn write_and_sync(file: &mut File, data: &Bytes, sync: bool) -> io::Result<u64> {
    file.write_all(data)?;
    if sync {
        file.sync_data()?;
    }
    Ok(data.len() as u64)
}
