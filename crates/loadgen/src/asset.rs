//! A pre-encoded FLV file replayed as a live stream: read and split into tags once, shared by
//! every publisher; looped with continuous timestamps, its metadata and sequence headers sent
//! once at the start, as an encoder does.

use std::sync::Arc;

use anyhow::{Context, bail};
use bytes::Bytes;
use liverec_media::flv::{
    AudioTag, FileReader, TagKind, VideoTag, parse_audio_tag, parse_video_tag,
};
use liverec_rtmp::handler::MediaKind;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    pub kind: MediaKind,
    /// Milliseconds from the asset's first media tag.
    pub timestamp: u32,
    pub body: Bytes,
}

#[derive(Debug)]
pub struct Asset {
    /// Metadata and sequence headers, sent once at timestamp 0.
    pub headers: Vec<Tag>,
    /// Coded frames, in file order.
    pub frames: Vec<Tag>,
    /// One pass of the loop: the last frame's timestamp plus one video frame interval.
    pub loop_ms: u32,
}

impl Asset {
    pub fn parse(data: Bytes) -> anyhow::Result<Arc<Self>> {
        let mut headers = Vec::new();
        let mut frames = Vec::new();
        let mut first: Option<u32> = None;
        for tag in FileReader::new(data).context("not an FLV file")? {
            let tag = tag.context("a truncated or malformed FLV tag")?;
            let (kind, header) = match tag.kind {
                TagKind::Script => (MediaKind::Data, true),
                TagKind::Video => (
                    MediaKind::Video,
                    matches!(
                        parse_video_tag(&tag.body).context("a video tag liverec cannot read")?,
                        VideoTag::SequenceHeader(_)
                    ),
                ),
                TagKind::Audio => (
                    MediaKind::Audio,
                    matches!(
                        parse_audio_tag(&tag.body).context("an audio tag liverec cannot read")?,
                        AudioTag::SequenceHeader(_)
                    ),
                ),
            };
            if header {
                headers.push(Tag {
                    kind,
                    timestamp: 0,
                    body: tag.body,
                });
            } else {
                let start = *first.get_or_insert(tag.timestamp);
                frames.push(Tag {
                    kind,
                    timestamp: tag.timestamp.saturating_sub(start),
                    body: tag.body,
                });
            }
        }
        if frames.is_empty() {
            bail!("the asset holds no media frames");
        }
        let loop_ms = frames
            .iter()
            .map(|t| t.timestamp)
            .max()
            .unwrap_or(0)
            .saturating_add(video_interval(&frames));
        Ok(Arc::new(Asset {
            headers,
            frames,
            loop_ms: loop_ms.max(1),
        }))
    }

    /// The `index`th frame of the endless replay and its timestamp.
    pub fn frame(&self, index: u64) -> (&Tag, u32) {
        let len = self.frames.len() as u64;
        let tag = &self.frames[(index % len) as usize];
        let pass = index / len;
        let timestamp = pass
            .saturating_mul(u64::from(self.loop_ms))
            .saturating_add(u64::from(tag.timestamp));
        // RTMP timestamps are 32-bit milliseconds and wrap (after 49 days).
        (tag, (timestamp % (1 << 32)) as u32)
    }

    /// Frames in one pass of the loop.
    pub fn frames_per_pass(&self) -> u64 {
        self.frames.len() as u64
    }
}

/// The most common gap between video frames (40 ms for 25 fps), or 1 ms without video.
fn video_interval(frames: &[Tag]) -> u32 {
    let mut gaps: Vec<u32> = frames
        .iter()
        .filter(|t| t.kind == MediaKind::Video)
        .map(|t| t.timestamp)
        .collect::<Vec<_>>()
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]))
        .filter(|g| *g > 0)
        .collect();
    if gaps.is_empty() {
        return 1;
    }
    gaps.sort_unstable();
    gaps[gaps.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(kind: MediaKind, timestamp: u32) -> Tag {
        Tag {
            kind,
            timestamp,
            body: Bytes::new(),
        }
    }

    #[test]
    fn the_loop_continues_one_frame_interval_after_the_last_frame() {
        let asset = Asset {
            headers: vec![],
            frames: vec![
                tag(MediaKind::Video, 0),
                tag(MediaKind::Audio, 10),
                tag(MediaKind::Video, 40),
                tag(MediaKind::Video, 80),
            ],
            loop_ms: 80 + 40,
        };
        let stamps: Vec<u32> = (0..9).map(|i| asset.frame(i).1).collect();
        assert_eq!(stamps, [0, 10, 40, 80, 120, 130, 160, 200, 240]);
        assert_eq!(asset.frame(5).0.kind, MediaKind::Audio);
        // Far out, the 32-bit clock wraps instead of overflowing.
        let (_, late) = asset.frame(4 * 40_000_000);
        assert_eq!(u64::from(late), (40_000_000u64 * 120) % (1 << 32));
    }

    #[test]
    fn the_video_interval_is_the_common_gap() {
        let frames = [0, 40, 80, 120, 200, 240].map(|t| tag(MediaKind::Video, t));
        assert_eq!(video_interval(&frames), 40);
        assert_eq!(video_interval(&[tag(MediaKind::Audio, 0)]), 1);
    }

    #[test]
    fn the_test_asset_splits_into_headers_and_frames() {
        let path = liverec_testkit::asset("h264_aac.flv");
        let asset = Asset::parse(std::fs::read(path).unwrap().into()).unwrap();
        // onMetaData, the AVC and the AAC sequence headers.
        assert_eq!(
            asset.headers.len(),
            3,
            "{:?}",
            asset.headers.iter().map(|t| t.kind).collect::<Vec<_>>()
        );
        assert!(asset.frames.len() > 100);
        assert_eq!(asset.frames[0].timestamp, 0);
        assert!(asset.loop_ms > asset.frames.last().unwrap().timestamp);
        assert!(Asset::parse(Bytes::from_static(b"not flv")).is_err());
    }
}
