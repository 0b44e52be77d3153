//! `hls::MediaPlaylist` read back by an independent parser (m3u8-rs), for the growing and
//! the finished state of both MPEG-TS and CMAF playlists.

use liverec_mux::hls::MediaPlaylist;
use m3u8_rs::{MediaPlaylistType, parse_media_playlist_res};
use proptest::prelude::*;

fn parse(text: &str) -> m3u8_rs::MediaPlaylist {
    match parse_media_playlist_res(text.as_bytes()) {
        Ok(playlist) => playlist,
        Err(e) => panic!("m3u8-rs rejects the playlist: {e:?}\n{text}"),
    }
}

#[test]
fn growing_ts_playlist_reads_back() {
    let mut playlist = MediaPlaylist {
        min_target_duration: 6,
        comments: vec!["LIVEREC:recording=7f3a;sequence=0".into()],
        ..MediaPlaylist::default()
    };
    playlist.push("1700000000_0.ts", 6.006);
    playlist.push("1700000006_1.ts", 5.994);
    let parsed = parse(&playlist.to_m3u8());
    assert_eq!(parsed.version, Some(3));
    assert_eq!(parsed.target_duration, 7);
    assert_eq!(parsed.media_sequence, 0);
    assert_eq!(parsed.playlist_type, Some(MediaPlaylistType::Event));
    assert!(!parsed.end_list);
    let segments: Vec<(&str, f32)> = parsed
        .segments
        .iter()
        .map(|s| (s.uri.as_str(), s.duration))
        .collect();
    assert_eq!(
        segments,
        [("1700000000_0.ts", 6.006), ("1700000006_1.ts", 5.994)]
    );
    assert!(parsed.segments.iter().all(|s| s.map.is_none()));
}

#[test]
fn finished_cmaf_playlist_reads_back_with_its_map() {
    let mut playlist = MediaPlaylist {
        min_target_duration: 4,
        map_uri: Some("1700000000_0_init.mp4".into()),
        ..MediaPlaylist::default()
    };
    for i in 0..3 {
        playlist.push(format!("1700000000_{i}.m4s"), 4.0);
    }
    playlist.ended = true;
    let parsed = parse(&playlist.to_m3u8());
    assert_eq!(parsed.version, Some(7));
    assert_eq!(parsed.target_duration, 4);
    assert_eq!(parsed.playlist_type, Some(MediaPlaylistType::Event));
    assert!(parsed.end_list);
    assert_eq!(parsed.segments.len(), 3);
    let map = parsed.segments.first().and_then(|s| s.map.as_ref());
    assert_eq!(map.map(|m| m.uri.as_str()), Some("1700000000_0_init.mp4"));
}

#[test]
fn empty_finished_playlist_is_still_valid() {
    let playlist = MediaPlaylist {
        ended: true,
        ..MediaPlaylist::default()
    };
    let parsed = parse(&playlist.to_m3u8());
    assert!(parsed.end_list);
    assert!(parsed.segments.is_empty());
}

proptest! {
    /// Any segment list renders to a playlist whose segments, durations (to the written
    /// millisecond) and target duration an independent parser agrees with.
    #[test]
    fn any_segment_list_reads_back(
        segments in proptest::collection::vec(("[a-z0-9_]{1,20}\\.ts", 0.0f64..30.0), 0..20),
        ended: bool,
        min_target in 0u64..10,
    ) {
        let mut playlist = MediaPlaylist {
            min_target_duration: min_target,
            ended,
            ..MediaPlaylist::default()
        };
        for (uri, duration) in &segments {
            playlist.push(uri.clone(), *duration);
        }
        let parsed = parse(&playlist.to_m3u8());
        prop_assert_eq!(parsed.end_list, ended);
        prop_assert_eq!(parsed.segments.len(), segments.len());
        for (got, (uri, duration)) in parsed.segments.iter().zip(&segments) {
            prop_assert_eq!(&got.uri, uri);
            prop_assert!((f64::from(got.duration) - duration).abs() < 0.001);
            // RFC 8216 §4.3.3.1: every duration, rounded, fits the target duration.
            prop_assert!(duration.round() as u64 <= parsed.target_duration);
        }
        prop_assert!(parsed.target_duration >= min_target);
    }
}
