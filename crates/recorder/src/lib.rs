//! The recorder: one state machine per stream ([`machine`], pure), driven by one task per
//! stream ([`driver`]) that writes the frames the machine selects through one [`output`] per
//! format into a storage target's spool (`liverec-storage`); the [`supervisor`] owns those tasks and
//! [`recovery`] finalizes what a crash left in a spool.

pub mod config;
pub mod driver;
pub mod machine;
pub mod output;
pub mod recovery;
pub mod spool;
pub mod supervisor;

pub use config::{ConfigSource, FixedConfig, Format, FormatSpec, RecordConfig};
pub use driver::{CommandReply, RecorderDeps};
pub use machine::{Command, Mode};
pub use output::{FileRecord, SegmentRecord};
pub use spool::SpoolPolicy;
pub use supervisor::{RecorderGone, RecorderHandle, Supervisor};
