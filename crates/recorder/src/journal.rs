//! The journal of a segmented recording: an append-only file of one JSON line per segment
//! event, beside the sidecar written when the playlist opens.
//!
//! Rewriting the whole sidecar at every segment cost O(segments) per segment, so a long
//! recording with short segments (or a publisher forcing cuts) made the sidecar writes grow
//! without bound. The sidecar now holds what does not change (the playlist's base state), and
//! each segment adds a few short lines here: O(1) per segment. Recovery reads the sidecar,
//! then replays the journal over it ([`replay`]); a torn last line (the process died while
//! appending) is ignored, and so is everything from the first line that does not parse.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use liverec_storage::layout;
use serde::{Deserialize, Serialize};

use crate::output::SegmentRecord;
use crate::recovery::{ClosingSegment, MetaKind, MetaSegment};

/// Journals larger than this are not ours: at three short lines per segment it holds
/// hundreds of thousands of segments, far more than a recording cycle makes.
const MAX_JOURNAL_BYTES: u64 = 256 * 1024 * 1024;

/// One event in the life of a playlist's segments, in the order they happen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum JournalEntry {
    /// A segment's spool file is about to be created (noted first, so no spool file is ever
    /// unclaimed).
    Opened { path: PathBuf, start_ms: u64 },
    /// A finished segment is about to leave the spool for its target.
    Closing { segment: ClosingSegment },
    /// The segment is stored; `index` is its place in the playlist, so replaying an entry
    /// twice cannot list a segment twice.
    Stored { index: u64, segment: SegmentRecord },
}

impl JournalEntry {
    /// Applies the event to the playlist state a sidecar describes (a single-file sidecar has
    /// no segments and is left alone).
    pub fn apply(self, kind: &mut MetaKind) {
        let MetaKind::Playlist {
            segments,
            open_segment,
            open_segment_start_ms,
            closing_segment,
            ..
        } = kind
        else {
            return;
        };
        match self {
            JournalEntry::Opened { path, start_ms } => {
                *open_segment = Some(path);
                *open_segment_start_ms = Some(start_ms);
            }
            JournalEntry::Closing { segment } => {
                // The closing segment is the one that was open.
                *open_segment = None;
                *open_segment_start_ms = None;
                *closing_segment = Some(segment);
            }
            JournalEntry::Stored { index, segment } => {
                if usize::try_from(index).is_ok_and(|i| i == segments.len()) {
                    segments.push(MetaSegment::Stored(segment));
                }
                *closing_segment = None;
            }
        }
    }
}

/// Replays the journal of `spool_file` over `kind`; returns the length of its valid prefix
/// (0 when there is no journal). Blocking.
pub fn replay(spool_file: &Path, kind: &mut MetaKind) -> io::Result<u64> {
    let path = layout::journal_path(spool_file);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut reader = BufReader::new(file.take(MAX_JOURNAL_BYTES));
    let mut valid = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        if line.last() != Some(&b'\n') {
            // Torn by a crash while appending: the event it was noting had not happened yet.
            break;
        }
        match serde_json::from_slice::<JournalEntry>(&line) {
            Ok(entry) => entry.apply(kind),
            Err(err) => {
                tracing::warn!(journal = %path.display(), offset = valid, %err,
                    "a recording's journal holds a line that does not parse; what follows it is ignored");
                break;
            }
        }
        valid += n as u64;
    }
    Ok(valid)
}

/// An open journal to append to. Cheap to clone (the appends of one playlist are sequential).
#[derive(Clone, Debug)]
pub struct Journal {
    file: Arc<File>,
}

impl Journal {
    /// Creates the (empty) journal of a new playlist, durably. Blocking.
    pub fn create(spool_file: &Path) -> io::Result<Self> {
        let path = layout::journal_path(spool_file);
        let file = File::options().create_new(true).append(true).open(&path)?;
        if let Some(dir) = path.parent() {
            liverec_storage::sync_dir(dir)?;
        }
        Ok(Self {
            file: Arc::new(file),
        })
    }

    /// Opens the journal of a playlist being recovered for further entries, cut back to its
    /// valid prefix (see [`replay`]) so new lines follow a whole one; created if the sidecar
    /// predates journals. Blocking.
    pub fn reopen(spool_file: &Path) -> io::Result<Self> {
        let mut scratch = MetaKind::Playlist {
            init_object: None,
            segments: Vec::new(),
            open_segment: None,
            open_segment_start_ms: None,
            closing_segment: None,
        };
        let valid = replay(spool_file, &mut scratch)?;
        let path = layout::journal_path(spool_file);
        let existed = path.exists();
        let file = File::options().create(true).append(true).open(&path)?;
        if file.metadata()?.len() > valid {
            file.set_len(valid)?;
            file.sync_all()?;
        }
        if !existed && let Some(dir) = path.parent() {
            liverec_storage::sync_dir(dir)?;
        }
        Ok(Self {
            file: Arc::new(file),
        })
    }

    /// Appends `entry` as one line and makes it durable. Blocking.
    pub fn append(&self, entry: &JournalEntry) -> io::Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(io::Error::other)?;
        line.push(b'\n');
        // One write of the whole line, in append mode: a crash tears at most this line.
        let mut file = &*self.file;
        file.write_all(&line)?;
        file.sync_data()
    }

    /// [`Journal::append`] off the runtime.
    pub async fn append_async(&self, entry: JournalEntry) -> io::Result<()> {
        let journal = self.clone();
        tokio::task::spawn_blocking(move || journal.append(&entry))
            .await
            .map_err(io::Error::other)?
    }
}

/// Removes a finished playlist's journal. Blocking; a missing file is fine.
pub fn remove(spool_file: &Path) {
    let _ = std::fs::remove_file(layout::journal_path(spool_file));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn empty() -> MetaKind {
        MetaKind::Playlist {
            init_object: None,
            segments: Vec::new(),
            open_segment: None,
            open_segment_start_ms: None,
            closing_segment: None,
        }
    }

    fn segment(i: u64) -> SegmentRecord {
        SegmentRecord {
            object: format!("s_{i}.ts"),
            start: UNIX_EPOCH + Duration::from_secs(i),
            duration_ms: 1000,
            size: 10,
        }
    }

    fn closing(i: u64) -> ClosingSegment {
        ClosingSegment {
            path: PathBuf::from(format!("/spool/{i}.ts")),
            start_ms: i * 1000,
            duration_ms: 1000,
            size: 10,
            sequence: i,
        }
    }

    fn segments_of(kind: &MetaKind) -> usize {
        match kind {
            MetaKind::Playlist { segments, .. } => segments.len(),
            MetaKind::File => 0,
        }
    }

    #[test]
    fn a_segment_life_replays_to_the_state_a_full_sidecar_had() {
        let mut kind = empty();
        JournalEntry::Opened {
            path: "/spool/0.ts".into(),
            start_ms: 0,
        }
        .apply(&mut kind);
        assert!(
            matches!(&kind, MetaKind::Playlist { open_segment: Some(p), .. } if p == Path::new("/spool/0.ts"))
        );
        JournalEntry::Closing {
            segment: closing(0),
        }
        .apply(&mut kind);
        assert!(matches!(
            &kind,
            MetaKind::Playlist {
                open_segment: None,
                closing_segment: Some(_),
                ..
            }
        ));
        let stored = JournalEntry::Stored {
            index: 0,
            segment: segment(0),
        };
        stored.clone().apply(&mut kind);
        // Replayed twice (a recovery noted it again): still listed once.
        stored.apply(&mut kind);
        assert_eq!(segments_of(&kind), 1);
        assert!(matches!(
            &kind,
            MetaKind::Playlist {
                closing_segment: None,
                ..
            }
        ));
    }

    #[test]
    fn appended_entries_replay_and_a_torn_tail_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let spool_file = dir.path().join("p.m3u8");
        let journal = Journal::create(&spool_file).unwrap();
        for i in 0..3 {
            journal
                .append(&JournalEntry::Stored {
                    index: i,
                    segment: segment(i),
                })
                .unwrap();
        }
        let whole = std::fs::metadata(layout::journal_path(&spool_file))
            .unwrap()
            .len();
        // A crash in the middle of the fourth line.
        let mut file = File::options()
            .append(true)
            .open(layout::journal_path(&spool_file))
            .unwrap();
        file.write_all(br#"{"event":"stored","ind"#).unwrap();
        let mut kind = empty();
        assert_eq!(replay(&spool_file, &mut kind).unwrap(), whole);
        assert_eq!(segments_of(&kind), 3);

        // Recovery goes on after the last whole line.
        let journal = Journal::reopen(&spool_file).unwrap();
        journal
            .append(&JournalEntry::Stored {
                index: 3,
                segment: segment(3),
            })
            .unwrap();
        let mut kind = empty();
        replay(&spool_file, &mut kind).unwrap();
        assert_eq!(segments_of(&kind), 4);
    }

    #[test]
    fn a_line_that_does_not_parse_ends_the_replay() {
        let dir = tempfile::tempdir().unwrap();
        let spool_file = dir.path().join("p.m3u8");
        let good = serde_json::to_string(&JournalEntry::Stored {
            index: 0,
            segment: segment(0),
        })
        .unwrap();
        let after = serde_json::to_string(&JournalEntry::Stored {
            index: 1,
            segment: segment(1),
        })
        .unwrap();
        std::fs::write(
            layout::journal_path(&spool_file),
            format!("{good}\nnot json\n{after}\n"),
        )
        .unwrap();
        let mut kind = empty();
        assert_eq!(
            replay(&spool_file, &mut kind).unwrap(),
            good.len() as u64 + 1
        );
        assert_eq!(segments_of(&kind), 1);
    }

    #[test]
    fn no_journal_leaves_the_sidecar_state() {
        let dir = tempfile::tempdir().unwrap();
        let mut kind = empty();
        assert_eq!(replay(&dir.path().join("x.m3u8"), &mut kind).unwrap(), 0);
        assert_eq!(kind, empty());
    }
}
