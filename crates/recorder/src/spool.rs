//! A file being written in a target's spool: muxed bytes are buffered, handed to the OS at
//! least every `flush_every` and fsynced at least every `sync_every`, off the async runtime.
//! Media payloads are queued by reference (the frames' own `Bytes`) and written with one
//! `writev`, so recording copies no media in memory.

use std::fs::File;
use std::io::{self, IoSlice, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use liverec_mux::{MuxOut, Patch};

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

/// Initial capacity of the header buffer: init segments, `moof`s and tags are small.
const HEAD_CAPACITY: usize = 4 * 1024;

/// One spool file. Muxers append to [`SpoolFile::buf`] or, through [`MuxOut`], queue payloads
/// by reference; [`SpoolFile::maybe_flush`] writes.
#[derive(Debug)]
pub struct SpoolFile {
    path: PathBuf,
    file: Option<File>,
    /// Bytes after everything in `queued`.
    pub buf: BytesMut,
    /// Data to write before `buf`, in order: earlier headers and media payloads.
    queued: Vec<Bytes>,
    queued_bytes: usize,
    /// Data was written since the last fsync.
    unsynced: bool,
    written: u64,
    /// A write failed (a full disk): what it held is gone, so the file takes no more writes
    /// and cannot be finished as whole; recovery keeps what of it decodes.
    lost_data: bool,
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
            buf: BytesMut::with_capacity(HEAD_CAPACITY),
            queued: Vec::new(),
            queued_bytes: 0,
            unsynced: false,
            written: 0,
            lost_data: false,
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
        self.written + self.buffered() as u64
    }

    /// Bytes not handed to the OS yet.
    pub fn buffered(&self) -> usize {
        self.queued_bytes + self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the buffer if the flush interval passed or the buffer is large; fsyncs if the
    /// sync interval passed.
    pub async fn maybe_flush(&mut self, now: Instant) -> io::Result<()> {
        let due = now.duration_since(self.last_flush) >= self.policy.flush_every
            || self.buffered() >= MAX_BUFFERED_BYTES;
        if due {
            self.flush(self.sync_due(now)).await?;
        }
        Ok(())
    }

    /// Whether the next write should also fsync.
    pub fn sync_due(&self, now: Instant) -> bool {
        now.duration_since(self.last_sync) >= self.policy.sync_every
    }

    /// Writes what is buffered (and fsyncs if `sync`). Nothing to write and nothing to sync
    /// costs nothing.
    pub async fn flush(&mut self, sync: bool) -> io::Result<()> {
        let parts = self.take_buffered();
        let sync = sync && (self.unsynced || !parts.is_empty());
        let now = Instant::now();
        self.last_flush = now;
        if parts.is_empty() && !sync {
            return Ok(());
        }
        self.run(move |file| write_and_sync(file, &parts, sync))
            .await?;
        self.unsynced = !sync;
        if sync {
            self.last_sync = now;
        }
        Ok(())
    }

    /// Everything buffered, in file order, leaving the buffers empty.
    fn take_buffered(&mut self) -> Vec<Bytes> {
        if !self.buf.is_empty() {
            self.queued.push(self.buf.split().freeze());
        }
        self.queued_bytes = 0;
        std::mem::take(&mut self.queued)
    }

    async fn run<F>(&mut self, op: F) -> io::Result<u64>
    where
        F: FnOnce(&mut File) -> io::Result<u64> + Send + 'static,
    {
        if self.lost_data {
            return Err(io::Error::other(
                "an earlier write to this spool file failed; it is left for recovery to repair",
            ));
        }
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
        let n = result.inspect_err(|_| self.lost_data = true)?;
        self.written += n;
        metrics::counter!(crate::metrics::BYTES_WRITTEN).increment(n);
        Ok(n)
    }

    /// Writes what is buffered, applies `patches` in place, fsyncs and closes. Returns the
    /// path and the file size; fails if any write to the file failed, since then it is not
    /// whole.
    pub async fn finish(mut self, patches: Vec<Patch>) -> io::Result<(PathBuf, u64)> {
        let parts = self.take_buffered();
        self.run(move |file| {
            let n = write_and_sync(file, &parts, false)?;
            for patch in &patches {
                file.write_all_at(&patch.bytes, patch.offset)?;
            }
            file.sync_all()?;
            Ok(n)
        })
        .await?;
        metrics::counter!(crate::metrics::FILES_WRITTEN).increment(1);
        Ok((self.path.clone(), self.written))
    }

    /// Abandons the file, removing it from the spool.
    pub async fn discard(mut self) {
        self.file = None;
        let path = self.path.clone();
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_file(path)).await;
    }
}

impl MuxOut for SpoolFile {
    fn head(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    fn payload(&mut self, data: &Bytes) {
        if !self.buf.is_empty() {
            let head = self.buf.split().freeze();
            self.queued_bytes += head.len();
            self.queued.push(head);
        }
        self.queued_bytes += data.len();
        self.queued.push(data.clone());
    }
}

fn write_and_sync(file: &mut File, parts: &[Bytes], sync: bool) -> io::Result<u64> {
    let written = write_all_parts(file, parts)?;
    if sync {
        file.sync_data()?;
    }
    Ok(written)
}

/// `write_all` for a list of buffers: one `writev` per up to 1024 of them, short writes resumed.
fn write_all_parts(file: &mut File, parts: &[Bytes]) -> io::Result<u64> {
    let mut slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
    let mut rest = &mut slices[..];
    let mut written = 0u64;
    while !rest.is_empty() {
        match file.write_vectored(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                written += n as u64;
                IoSlice::advance_slices(&mut rest, n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_that_lost_a_write_takes_no_more_and_cannot_be_finished() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut spool = SpoolFile::create(dir.path().join("a.ts"), SpoolPolicy::default()).await?;
        spool.buf.extend_from_slice(b"first");
        spool.flush(false).await?;
        // A write that fails as a full disk would: the file is read-only underneath.
        let read_only = File::open(spool.path())?;
        spool.file = Some(read_only);
        spool.buf.extend_from_slice(b"lost");
        assert!(spool.flush(false).await.is_err());
        spool.file = Some(File::options().append(true).open(spool.path())?);
        spool.buf.extend_from_slice(b"later");
        assert!(spool.flush(false).await.is_err(), "no write after a gap");
        assert!(spool.finish(Vec::new()).await.is_err());
        assert_eq!(std::fs::read(dir.path().join("a.ts"))?, b"first");
        Ok(())
    }

    #[tokio::test]
    async fn headers_and_queued_payloads_reach_the_file_in_order() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("a.mp4");
        let mut spool = SpoolFile::create(path.clone(), SpoolPolicy::default()).await?;
        spool.head().extend_from_slice(b"init|");
        spool.payload(&Bytes::from_static(b"frame1|"));
        spool.payload(&Bytes::from_static(b"frame2|"));
        spool.head().extend_from_slice(b"moof|");
        assert_eq!(spool.len(), 24);
        spool.flush(false).await?;
        assert_eq!(spool.buffered(), 0);
        spool.payload(&Bytes::from_static(b"frame3|"));
        spool.head().extend_from_slice(b"mfra");
        let patches = vec![Patch {
            offset: 0,
            bytes: Bytes::from_static(b"INIT"),
        }];
        let (path, size) = spool.finish(patches).await?;
        assert_eq!(size, 35);
        assert_eq!(std::fs::read(path)?, b"INIT|frame1|frame2|moof|frame3|mfra");
        Ok(())
    }
}
