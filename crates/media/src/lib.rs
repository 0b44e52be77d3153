//! Codec-agnostic media model of liverec.
//!
//! Everything between the RTMP socket and the muxers speaks these types: a [`Frame`] is one
//! access unit of one track with a normalised timestamp, a [`CodecConfig`] describes how to
//! decode a track's frames, and [`Tracks`] is the set of configs a file is opened with.
//! No I/O and no async here.

pub mod codec;
pub mod flv;
pub mod frame;
pub mod timestamp;

pub use codec::{AudioCodec, AudioConfig, CodecConfig, Tracks, VideoCodec, VideoConfig};
pub use frame::{FRAME_OVERHEAD_BYTES, Frame, TrackKind};
