//! Inputs the cargo-fuzz targets (fuzz/, docs/FUZZING.md) found breaking this crate, so a plain
//! `cargo test` keeps each bug fixed.

use bytes::Bytes;
use liverec_media::{Frame, TrackKind};

/// `mux_ts` (fuzz/corpus/mux_ts/regression_pts_overflow): a frame at DTS i64::MAX with a
/// composition offset of 1 ms; `Frame::pts` overflowed. The whole sequence through the TS
/// muxer is crates/mux/tests/fuzz_regressions.rs.
#[test]
fn pts_at_the_end_of_time_saturates() {
    let frame = Frame {
        track: TrackKind::Video,
        dts: i64::MAX,
        cts: 1,
        keyframe: true,
        data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
    };
    assert_eq!(frame.pts(), i64::MAX);
    let early = Frame {
        dts: i64::MIN,
        cts: -1,
        ..frame
    };
    assert_eq!(early.pts(), i64::MIN);
}
