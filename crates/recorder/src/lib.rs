//! The recorder: one state machine per stream ([`machine`], pure) driven by a task per stream
//! ([`driver`]) that writes the frames the machine selects through one output per format.
pub mod machine;
