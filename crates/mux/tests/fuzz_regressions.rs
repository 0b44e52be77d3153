//! Inputs the cargo-fuzz targets (fuzz/, docs/FUZZING.md) found breaking an invariant, fed to
//! the same public function as the target, so a plain `cargo test` keeps each bug fixed.

use std::io::Cursor;

use liverec_mux::fmp4::{RecoverError, recover};

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
