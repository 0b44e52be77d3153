//! A whole FLV file → tracks and frames (for tests, tools and recovery; the live path goes
//! through the RTMP layer, which sees one tag at a time).

use std::sync::Arc;

use super::{AudioTag, FileReader, FlvError, TagKind, VideoTag, parse_audio_tag, parse_video_tag};
use crate::{Frame, TrackKind, Tracks};

/// The tracks and frames of an FLV file held in memory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileMedia {
    /// The first sequence header of each track.
    pub tracks: Tracks,
    /// Every coded frame, in file order; `dts` is the tag timestamp.
    pub frames: Vec<Frame>,
}

/// Reads every audio/video tag of an FLV file into frames. Script tags and
/// [`super::Ignored`] tags are skipped; the first error (a truncated file, an unsupported
/// codec, a malformed sequence header) is returned.
pub fn read_file_frames(data: &[u8]) -> Result<FileMedia, FlvError> {
    let mut media = FileMedia::default();
    for tag in FileReader::new(bytes::Bytes::copy_from_slice(data))? {
        let tag = tag?;
        let dts = i64::from(tag.timestamp);
        match tag.kind {
            TagKind::Script => {}
            TagKind::Video => match parse_video_tag(&tag.body)? {
                VideoTag::SequenceHeader(cfg) => {
                    media.tracks.video.get_or_insert_with(|| Arc::new(cfg));
                }
                VideoTag::Frame {
                    keyframe,
                    cts,
                    data,
                    ..
                } => media.frames.push(Frame {
                    track: TrackKind::Video,
                    dts,
                    cts,
                    keyframe,
                    data,
                }),
                VideoTag::EndOfSequence { .. } | VideoTag::Ignored(_) => {}
            },
            TagKind::Audio => match parse_audio_tag(&tag.body)? {
                AudioTag::SequenceHeader(cfg) => {
                    media.tracks.audio.get_or_insert_with(|| Arc::new(cfg));
                }
                AudioTag::Frame { data, .. } => media.frames.push(Frame {
                    track: TrackKind::Audio,
                    dts,
                    cts: 0,
                    keyframe: true,
                    data,
                }),
                AudioTag::EndOfSequence { .. } | AudioTag::Ignored(_) => {}
            },
        }
    }
    Ok(media)
}
