//! Inputs the cargo-fuzz targets (fuzz/, docs/FUZZING.md) found breaking an invariant, fed to
//! the same public function as the target, so a plain `cargo test` keeps each bug fixed.

use std::io::Cursor;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use liverec_media::{Frame, TrackKind, Tracks, VideoConfig};
use liverec_mux::fmp4::{RecoverError, recover};
use liverec_mux::ts;

/// `recover_fmp4`: a `moov` whose `mvhd` ends before its duration field. Recovery placed the
/// duration patch where the field would be, over the header of the `trak` that follows, so
/// finalizing the file made it unrecoverable. A duration field cut short is now malformed.
#[test]
fn recover_fmp4_mvhd_without_its_duration_field_is_malformed() {
    let file = include_bytes!("fuzz/recover_fmp4_short_mvhd.mp4");
    match recover(&mut Cursor::new(&file[..])) {
        Err(RecoverError::Malformed { fourcc, what, .. }) => {
            assert_eq!((&fourcc, what), (b"mvhd", "short"));
        }
        other => panic!("expected a short mvhd, got {other:?}"),
    }
}

/// The avcC record of tests/.assets/h264_aac.flv (fuzz/records/h264.avcc).
const H264_AVCC: [u8; 44] = [
    0x01, 0x64, 0x00, 0x0d, 0xff, 0xe1, 0x00, 0x19, 0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41,
    0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42, 0x99,
    0x60, 0x01, 0x00, 0x04, 0x68, 0xef, 0x8f, 0xcb, 0xfd, 0xf8, 0xf8, 0x00,
];

/// `mux_ts`: the frame script fuzz/corpus/mux_ts/regression_pts_overflow (raw timing, nine
/// keyframes stepping by 32767 << 45 ms with a composition offset of 1 ms) reaches a DTS of
/// i64::MAX, and `Frame::pts` overflowed there. The TS muxer takes any time (modulo 2^33).
#[test]
fn mux_ts_frame_at_the_end_of_time_does_not_overflow_its_pts() {
    let video = VideoConfig::from_avc_record(Bytes::from_static(&H264_AVCC));
    let tracks = Tracks {
        video: Some(Arc::new(video.expect("the asset's avcC parses"))),
        audio: None,
    };
    let mut muxer = ts::Muxer::new(&tracks).expect("an H.264 track");
    let mut out = BytesMut::new();
    let mut dts = 0i64;
    for _ in 0..9 {
        dts = dts.saturating_add(32767 << 45);
        let frame = Frame {
            track: TrackKind::Video,
            dts,
            cts: 1,
            keyframe: true,
            data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
        };
        muxer.push(&frame, &mut out).expect("a valid frame");
    }
    assert_eq!(dts, i64::MAX);
    assert_eq!(out.len() % ts::PACKET_SIZE, 0);
}
