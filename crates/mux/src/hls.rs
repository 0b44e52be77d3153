//! HLS media playlists (RFC 8216) for `m3u8` (MPEG-TS segments) and `cmaf` (fMP4 segments
//! after an `EXT-X-MAP` init segment) recordings.
//!
//! A recording's playlist grows while it records: the recorder appends each segment's lines
//! ([`Segment::render`]) and renders the whole playlist again only when the target duration
//! grows, and when it is finalized, with [`MediaPlaylist::ended`] set. The playlist type stays `EVENT` after `#EXT-X-ENDLIST` rather
//! than turning into `VOD`: RFC 8216 §6.2.1 lets a server only append to an EVENT playlist
//! (the type line may not change under a client that is following it live), and a finished
//! EVENT playlist already plays as video on demand. Each render is therefore a prefix-
//! preserving extension of the previous one (only the target duration may grow, see
//! [`MediaPlaylist::target_duration`]).
//!
//! Pure: the caller owns the file.

use std::fmt::Write as _;

/// Protocol version for MPEG-TS playlists: version 3 brings fractional `EXTINF` durations.
pub const VERSION_TS: u8 = 3;
/// Protocol version with `EXT-X-MAP` for fMP4 (CMAF) segments (RFC 8216 §7, Apple's HLS
/// authoring spec).
pub const VERSION_FMP4: u8 = 7;
/// Decimals of `EXTINF` durations: millisecond precision, as recorded timestamps have.
const DURATION_DECIMALS: usize = 3;

/// One media segment: its URI relative to the playlist, and its duration in seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    pub uri: String,
    pub duration_secs: f64,
    /// `EXT-X-DISCONTINUITY` before the segment: its timestamps do not follow the previous
    /// one's (another recording, in a generated index).
    pub discontinuity: bool,
    /// A new `EXT-X-MAP` init segment from this segment on.
    pub map_uri: Option<String>,
}

/// A media playlist (RFC 8216 §4.3.3) with media sequence 0.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MediaPlaylist {
    /// The smallest `EXT-X-TARGETDURATION` to announce, in seconds: the configured slice
    /// duration, so the target does not change while segments come in. 0 lets the segments
    /// alone decide.
    pub min_target_duration: u64,
    /// URI of the fMP4 initialization segment (`EXT-X-MAP`); `None` for MPEG-TS.
    pub map_uri: Option<String>,
    /// Comment lines written after `#EXTM3U` (without the leading `#`), e.g. the recording
    /// id and start time recovery reads back. Players ignore them.
    pub comments: Vec<String>,
    pub segments: Vec<Segment>,
    /// The recording is finalized: `#EXT-X-ENDLIST` closes the playlist.
    pub ended: bool,
}

impl MediaPlaylist {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a segment.
    pub fn push(&mut self, uri: impl Into<String>, duration_secs: f64) {
        self.push_after_break(uri, duration_secs, false, None);
    }

    /// Appends a segment that follows a discontinuity and/or switches to another init
    /// segment (`EXT-X-MAP`).
    pub fn push_after_break(
        &mut self,
        uri: impl Into<String>,
        duration_secs: f64,
        discontinuity: bool,
        map_uri: Option<String>,
    ) {
        self.segments.push(Segment {
            discontinuity,
            map_uri,
            ..Segment::new(uri, duration_secs)
        });
    }

    /// Seconds of media in the playlist.
    pub fn duration_secs(&self) -> f64 {
        self.segments.iter().map(|s| s.duration_secs).sum()
    }

    /// `EXT-X-TARGETDURATION`: the longest segment rounded up to whole seconds (RFC 8216
    /// §4.3.3.1 asks for at least its rounded value; ceiling also satisfies players that
    /// compare strictly), and at least [`MediaPlaylist::min_target_duration`]. It only grows
    /// when a segment is longer than the configured slice duration (a late keyframe).
    pub fn target_duration(&self) -> u64 {
        self.segments
            .iter()
            .map(Segment::target_duration)
            .fold(self.min_target_duration, u64::max)
    }

    /// The protocol version the playlist needs.
    pub fn version(&self) -> u8 {
        if self.map_uri.is_some() || self.segments.iter().any(|s| s.map_uri.is_some()) {
            VERSION_FMP4
        } else {
            VERSION_TS
        }
    }

    /// Writes the playlist to `out` (appending). CR and LF in URIs and comments, and `"` in
    /// the map URI, are left out so that no input can break the line structure.
    pub fn render(&self, out: &mut String) {
        out.push_str("#EXTM3U\n");
        for comment in &self.comments {
            out.push('#');
            push_clean(out, comment, false);
            out.push('\n');
        }
        // `write!` to a String cannot fail.
        let _ = writeln!(out, "#EXT-X-VERSION:{}", self.version());
        let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", self.target_duration());
        out.push_str("#EXT-X-MEDIA-SEQUENCE:0\n");
        out.push_str("#EXT-X-PLAYLIST-TYPE:EVENT\n");
        if let Some(map) = &self.map_uri {
            out.push_str("#EXT-X-MAP:URI=\"");
            push_clean(out, map, true);
            out.push_str("\"\n");
        }
        for segment in &self.segments {
            segment.render(out);
        }
        if self.ended {
            out.push_str("#EXT-X-ENDLIST\n");
        }
    }

    /// [`MediaPlaylist::render`] into a new string.
    pub fn to_m3u8(&self) -> String {
        let mut out = String::new();
        self.render(&mut out);
        out
    }
}

impl Segment {
    /// A segment without a break before it.
    pub fn new(uri: impl Into<String>, duration_secs: f64) -> Self {
        Self {
            uri: uri.into(),
            duration_secs,
            discontinuity: false,
            map_uri: None,
        }
    }

    /// Writes the segment's lines to `out` (appending): what a playlist that grows by this
    /// segment gains, if its target duration ([`Segment::target_duration`]) does not grow.
    pub fn render(&self, out: &mut String) {
        let duration = if self.duration_secs.is_finite() {
            self.duration_secs.max(0.0)
        } else {
            0.0
        };
        if self.discontinuity {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        if let Some(map) = &self.map_uri {
            out.push_str("#EXT-X-MAP:URI=\"");
            push_clean(out, map, true);
            out.push_str("\"\n");
        }
        let _ = writeln!(out, "#EXTINF:{duration:.DURATION_DECIMALS$},");
        push_clean(out, &self.uri, false);
        out.push('\n');
    }

    /// The smallest `EXT-X-TARGETDURATION` this segment allows.
    pub fn target_duration(&self) -> u64 {
        ceil_secs(self.duration_secs)
    }
}

/// Whole seconds, rounded up; negative, NaN and infinite durations count as 0.
fn ceil_secs(secs: f64) -> u64 {
    if secs.is_finite() && secs > 0.0 {
        // `as` saturates for values beyond u64.
        secs.ceil() as u64
    } else {
        0
    }
}

fn push_clean(out: &mut String, text: &str, in_quotes: bool) {
    out.extend(
        text.chars()
            .filter(|&c| c != '\n' && c != '\r' && !(in_quotes && c == '"')),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growing_ts_playlist() {
        let mut playlist = MediaPlaylist::new();
        playlist.push("1700000000_0.ts", 2.0);
        playlist.push("1700000000_1.ts", 2.52);
        assert_eq!(
            playlist.to_m3u8(),
            "#EXTM3U\n\
             #EXT-X-VERSION:3\n\
             #EXT-X-TARGETDURATION:3\n\
             #EXT-X-MEDIA-SEQUENCE:0\n\
             #EXT-X-PLAYLIST-TYPE:EVENT\n\
             #EXTINF:2.000,\n\
             1700000000_0.ts\n\
             #EXTINF:2.520,\n\
             1700000000_1.ts\n"
        );
    }

    #[test]
    fn discontinuities_and_init_switches() {
        let mut playlist = MediaPlaylist::new();
        playlist.map_uri = Some("a_init.mp4".into());
        playlist.push("a_0.m4s", 4.0);
        playlist.push_after_break("b_0.m4s", 4.0, true, Some("b_init.mp4".into()));
        playlist.ended = true;
        let text = playlist.to_m3u8();
        assert!(
            text.contains("a_0.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"b_init.mp4\"\n#EXTINF:4.000,\nb_0.m4s\n"),
            "{text}"
        );
        assert_eq!(playlist.version(), VERSION_FMP4);
        let mut ts = MediaPlaylist::new();
        ts.push_after_break("x.ts", 1.0, true, None);
        assert_eq!(ts.version(), VERSION_TS);
    }

    #[test]
    fn ended_cmaf_playlist_with_map_and_comment() {
        let playlist = MediaPlaylist {
            min_target_duration: 6,
            map_uri: Some("rec_init.mp4".into()),
            comments: vec!["LIVEREC-RECORDING:abc".into()],
            segments: vec![Segment {
                uri: "rec_0.m4s".into(),
                duration_secs: 4.0004,
                discontinuity: false,
                map_uri: None,
            }],
            ended: true,
        };
        assert_eq!(
            playlist.to_m3u8(),
            "#EXTM3U\n\
             #LIVEREC-RECORDING:abc\n\
             #EXT-X-VERSION:7\n\
             #EXT-X-TARGETDURATION:6\n\
             #EXT-X-MEDIA-SEQUENCE:0\n\
             #EXT-X-PLAYLIST-TYPE:EVENT\n\
             #EXT-X-MAP:URI=\"rec_init.mp4\"\n\
             #EXTINF:4.000,\n\
             rec_0.m4s\n\
             #EXT-X-ENDLIST\n"
        );
    }

    #[test]
    fn target_duration_is_the_ceiling_of_the_longest_segment() {
        let mut playlist = MediaPlaylist {
            min_target_duration: 2,
            ..MediaPlaylist::default()
        };
        assert_eq!(playlist.target_duration(), 2);
        playlist.push("a.ts", 2.0);
        assert_eq!(playlist.target_duration(), 2);
        playlist.push("b.ts", 2.001);
        assert_eq!(playlist.target_duration(), 3);
        playlist.push("c.ts", f64::NAN);
        playlist.push("d.ts", -5.0);
        assert_eq!(playlist.target_duration(), 3);
    }

    #[test]
    fn line_breaks_and_quotes_cannot_inject_tags() {
        let mut playlist = MediaPlaylist {
            map_uri: Some("init\".mp4\n#EXT-X-ENDLIST".into()),
            ..MediaPlaylist::default()
        };
        playlist.push("seg\r\n#EXT-X-ENDLIST\n0.ts", f64::INFINITY);
        let text = playlist.to_m3u8();
        assert!(!text.contains("\n#EXT-X-ENDLIST"), "{text}");
        assert!(text.contains("#EXT-X-MAP:URI=\"init.mp4#EXT-X-ENDLIST\"\n"));
        assert!(text.contains("#EXTINF:0.000,\nseg#EXT-X-ENDLIST0.ts\n"));
    }

    #[test]
    fn a_rendered_segment_is_what_the_playlist_gains() {
        let mut playlist = MediaPlaylist {
            min_target_duration: 4,
            map_uri: Some("init.mp4".into()),
            ..MediaPlaylist::default()
        };
        playlist.push("0.m4s", 3.9);
        let before = playlist.to_m3u8();
        let next = Segment::new("1.m4s", 4.0);
        assert_eq!(next.target_duration(), 4);
        let mut appended = before.clone();
        next.render(&mut appended);
        playlist.segments.push(next);
        assert_eq!(appended, playlist.to_m3u8());
        assert_eq!(Segment::new("x", 4.2).target_duration(), 5);
    }

    #[test]
    fn each_render_extends_the_previous_one() {
        let mut playlist = MediaPlaylist {
            min_target_duration: 4,
            ..MediaPlaylist::default()
        };
        let mut previous = playlist.to_m3u8();
        for i in 0..5 {
            playlist.push(format!("{i}.ts"), 3.5);
            let next = playlist.to_m3u8();
            assert!(next.starts_with(&previous), "{previous}\n---\n{next}");
            previous = next;
        }
        playlist.ended = true;
        let last = playlist.to_m3u8();
        assert!(last.starts_with(&previous));
        assert!(last.ends_with("4.ts\n#EXT-X-ENDLIST\n"));
    }
}
