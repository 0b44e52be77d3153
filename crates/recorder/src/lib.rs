//! The recorder: one state machine per stream ([`machine`], pure), driven by one task per
//! stream ([`driver`]) that writes the frames the machine selects through one [`output`] per
//! format into a storage target's spool (`liverec-storage`); the [`supervisor`] owns those tasks and
//! [`recovery`] finalizes what a crash left in a spool. [`hooks`] are what it asks (whether to
//! record a publish) and tells (a recording started, paused, resumed, lost data) the server.

pub mod board;
pub mod config;
pub mod driver;
pub mod hooks;
pub mod journal;
pub mod machine;
pub mod metrics;
pub mod output;
pub mod recovery;
pub mod spool;
pub mod supervisor;

pub use config::{ConfigSource, FixedConfig, Format, FormatSpec, RecordConfig, RecordMode};
pub use driver::{CommandReply, RecorderDeps, push_args};
pub use hooks::{
    AlwaysRecord, AskError, AskFuture, NoStatus, OnDemand, RecordAnswer, RecordQuestion,
    RecordStatus, SessionFormats, StatusSink,
};
pub use machine::{Command, Mode};
pub use output::{FileRecord, SegmentRecord};
pub use spool::SpoolPolicy;
pub use supervisor::{RecorderGone, RecorderHandle, Supervisor};
