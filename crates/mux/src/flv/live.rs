//! FLV tags for live viewers: what RTMP play sends as messages and HTTP-FLV as a file that
//! never ends. Pure: tracks and frames in, tags out.
//!
//! A tag is a small [`TagHead`] plus a payload shared with the frame (no copy of the media),
//! so each viewer's cost per frame is a few bytes of head and its own socket buffer.
//! Timestamps start at 0 with the viewer's first frame (the cached keyframe), as players
//! expect of a stream they join.

use bytes::{BufMut, Bytes, BytesMut};
use liverec_media::flv::{TAG_TYPE_AUDIO, TAG_TYPE_SCRIPT, TAG_TYPE_VIDEO};
use liverec_media::{Frame, TrackKind, Tracks};

use super::{
    FILE_HEADER_LEN, FLAG_AUDIO, FLAG_VIDEO, MAX_BODY_LEN, MuxError, Muxer, SIGNATURE, TagHead,
    audio_config_head, audio_frame_head, check_body_len, tag, video_config_head, video_frame_head,
};

/// One tag of a live stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveTag {
    /// FLV tag type, which is also the RTMP message type (8 audio, 9 video, 18 data).
    pub tag_type: u8,
    /// Milliseconds since the viewer's first frame (wraps after 49 days, as RTMP's do).
    pub timestamp: u32,
    pub head: TagHead,
    pub payload: Bytes,
}

impl LiveTag {
    /// Bytes of the body (head and payload).
    pub fn body_len(&self) -> usize {
        self.head.len() + self.payload.len()
    }

    /// Appends the tag as FLV: header, body, `PreviousTagSize`.
    pub fn write_flv(&self, out: &mut BytesMut) {
        let body_len = self.body_len();
        out.reserve(tag::total_len(body_len));
        tag::header(out, self.tag_type, body_len, self.timestamp);
        out.put_slice(self.head.as_slice());
        out.put_slice(&self.payload);
        tag::trailer(out, body_len);
    }
}

/// Appends an FLV file header announcing both tracks (players then wait for either's
/// sequence header; a stream's tracks can appear after it starts).
pub fn write_file_header(out: &mut BytesMut) {
    out.put_slice(&SIGNATURE);
    out.put_u8(FLAG_AUDIO | FLAG_VIDEO);
    out.put_u32(FILE_HEADER_LEN);
    out.put_u32(0); // PreviousTagSize0
}

/// Turns one viewer's hub events into tags.
#[derive(Debug, Default)]
pub struct LiveTags {
    /// The tracks announced so far.
    announced: Tracks,
    /// DTS of the viewer's first frame.
    first_dts: Option<i64>,
    /// Timestamp of the latest tag, for sequence headers sent between frames.
    last_timestamp: u32,
}

impl LiveTags {
    pub fn new() -> Self {
        Self::default()
    }

    /// Tags announcing `tracks`: `onMetaData` and the sequence header of each track whose
    /// configuration is new or changed since the last call (none when nothing changed).
    pub fn tracks(&mut self, tracks: &Tracks, out: &mut Vec<LiveTag>) {
        if *tracks == self.announced {
            return;
        }
        let timestamp = self.last_timestamp;
        out.push(LiveTag {
            tag_type: TAG_TYPE_SCRIPT,
            timestamp,
            head: TagHead::new(),
            payload: metadata_body(tracks),
        });
        if let Some(video) = &tracks.video
            && self.announced.video.as_ref() != Some(video)
        {
            let head = video_config_head(video);
            let len = video.record.len().min(MAX_BODY_LEN - head.len());
            out.push(LiveTag {
                tag_type: TAG_TYPE_VIDEO,
                timestamp,
                head,
                payload: video.record.slice(..len),
            });
        }
        if let Some(audio) = &tracks.audio
            && self.announced.audio.as_ref() != Some(audio)
        {
            let head = audio_config_head();
            let len = audio.specific.len().min(MAX_BODY_LEN - head.len());
            out.push(LiveTag {
                tag_type: TAG_TYPE_AUDIO,
                timestamp,
                head,
                payload: audio.specific.slice(..len),
            });
        }
        self.announced = tracks.clone();
    }

    /// The tag of one frame, under the tracks last announced.
    pub fn frame(&mut self, frame: &Frame) -> Result<LiveTag, MuxError> {
        if frame.data.is_empty() {
            return Err(MuxError::EmptyFrame(frame.track));
        }
        let first = *self.first_dts.get_or_insert(frame.dts);
        // Wrapping, as RTMP timestamps do: a viewer may watch for more than 49 days.
        let timestamp = frame.dts.saturating_sub(first).max(0) as u32;
        let (tag_type, head) = match frame.track {
            TrackKind::Video => {
                let config = self
                    .announced
                    .video
                    .as_deref()
                    .ok_or(MuxError::TrackNotConfigured(TrackKind::Video))?;
                (TAG_TYPE_VIDEO, video_frame_head(config, frame)?)
            }
            TrackKind::Audio => {
                if self.announced.audio.is_none() {
                    return Err(MuxError::TrackNotConfigured(TrackKind::Audio));
                }
                (TAG_TYPE_AUDIO, audio_frame_head())
            }
        };
        check_body_len(frame.track, head.len() + frame.data.len())?;
        self.last_timestamp = timestamp;
        Ok(LiveTag {
            tag_type,
            timestamp,
            head,
            payload: frame.data.clone(),
        })
    }
}

/// The body of a live `onMetaData`: what a recording's says, with duration and size 0
/// (unknown, as for any live stream).
fn metadata_body(tracks: &Tracks) -> Bytes {
    let mut tag_bytes = BytesMut::new();
    Muxer::new(tracks).write_metadata(&mut tag_bytes);
    let end = tag_bytes.len().saturating_sub(tag::TRAILER_LEN);
    tag_bytes.freeze().slice(tag::HEADER_LEN.min(end)..end)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use liverec_media::flv::{TagKind, read_file_frames, read_file_tags};
    use liverec_media::{AudioConfig, VideoConfig};
    use std::sync::Arc;

    const AVCC: &[u8] = &[
        0x01, 0x64, 0x00, 0x0d, 0xff, 0xe1, 0x00, 0x19, 0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41,
        0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1,
        0x42, 0x99, 0x60, 0x01, 0x00, 0x04, 0x68, 0xef, 0x8f, 0xcb,
    ];

    fn tracks() -> Tracks {
        Tracks {
            video: Some(Arc::new(
                VideoConfig::from_avc_record(Bytes::from_static(AVCC)).unwrap(),
            )),
            audio: Some(Arc::new(
                AudioConfig::from_aac_specific_config(Bytes::from_static(&[0x12, 0x10])).unwrap(),
            )),
        }
    }

    fn frame(track: TrackKind, dts: i64, keyframe: bool) -> Frame {
        Frame {
            track,
            dts,
            cts: if track == TrackKind::Video { 40 } else { 0 },
            keyframe,
            data: Bytes::from_static(&[0, 0, 0, 2, 0x65, 0x88]),
        }
    }

    /// A viewer joining at dts 10000 gets a file that reads back as the same frames, from 0.
    #[test]
    fn a_live_stream_reads_back_as_flv() {
        let mut live = LiveTags::new();
        let mut tags = Vec::new();
        live.tracks(&tracks(), &mut tags);
        assert_eq!(tags.len(), 3, "metadata and two sequence headers");
        live.tracks(&tracks(), &mut tags);
        assert_eq!(tags.len(), 3, "unchanged tracks are not announced again");
        for (i, dts) in [10_000, 10_020, 10_040].into_iter().enumerate() {
            tags.push(live.frame(&frame(TrackKind::Video, dts, i == 0)).unwrap());
            tags.push(live.frame(&frame(TrackKind::Audio, dts, true)).unwrap());
        }
        let mut file = BytesMut::new();
        write_file_header(&mut file);
        for tag in &tags {
            tag.write_flv(&mut file);
        }
        let read: Vec<_> = read_file_tags(&file).collect::<Result<_, _>>().unwrap();
        assert_eq!(read.len(), tags.len());
        assert!(matches!(read[0].kind, TagKind::Script));
        let media = read_file_frames(&file).unwrap();
        assert_eq!(media.tracks, tracks());
        let frames = media.frames;
        let dts: Vec<i64> = frames.iter().map(|f| f.dts).collect();
        assert_eq!(dts, vec![0, 0, 20, 20, 40, 40]);
        assert!(frames[0].keyframe && frames[0].cts == 40);
    }

    #[test]
    fn a_changed_config_is_announced_alone_at_the_current_time() {
        let mut live = LiveTags::new();
        let mut tags = Vec::new();
        live.tracks(&tracks(), &mut tags);
        live.frame(&frame(TrackKind::Video, 500, true)).unwrap();
        let later = live.frame(&frame(TrackKind::Video, 1500, false)).unwrap();
        assert_eq!(later.timestamp, 1000);
        let mut changed = tracks();
        changed.audio = Some(Arc::new(
            AudioConfig::from_aac_specific_config(Bytes::from_static(&[0x11, 0x90])).unwrap(),
        ));
        tags.clear();
        live.tracks(&changed, &mut tags);
        let types: Vec<u8> = tags.iter().map(|t| t.tag_type).collect();
        assert_eq!(types, vec![TAG_TYPE_SCRIPT, TAG_TYPE_AUDIO]);
        assert!(tags.iter().all(|t| t.timestamp == 1000));
    }

    #[test]
    fn frames_of_unannounced_tracks_and_empty_frames_are_refused() {
        let mut live = LiveTags::new();
        assert!(live.frame(&frame(TrackKind::Video, 0, true)).is_err());
        let mut tags = Vec::new();
        live.tracks(&tracks(), &mut tags);
        let mut empty = frame(TrackKind::Audio, 0, true);
        empty.data = Bytes::new();
        assert!(live.frame(&empty).is_err());
    }
}
