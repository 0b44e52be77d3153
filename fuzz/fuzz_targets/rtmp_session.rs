//! An RTMP connection after the handshake, sans IO: chunk reader → `Session` (commands,
//! AMF0, publish and play names and queries, aggregate and data messages) → FLV tag parsing of
//! the media, as `serve_connection` and the ingest drive them; an accepted play gets a tag
//! written back.
//!
//! Invariant: everything the server writes back is a chunk stream of AMF0 commands that the
//! chunk reader and AMF0 decoder accept.

#![no_main]

use std::net::{Ipv4Addr, SocketAddr};

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use liverec_fuzz::Input;
use liverec_media::flv::{parse_audio_tag, parse_video_tag};
use liverec_rtmp::chunk::Reader;
use liverec_rtmp::message::type_id;
use liverec_rtmp::session::{Session, SessionEvent};
use liverec_rtmp::{MediaKind, Refusal, amf0};

/// Checks that the server's output is a valid chunk stream of decodable commands.
fn check_output(reader: &mut Reader, out: &mut BytesMut) {
    loop {
        match reader.read(out) {
            Ok(Some(message)) => {
                if message.type_id == type_id::COMMAND_AMF0 {
                    assert!(
                        amf0::decode_all(&message.payload).is_ok(),
                        "the server wrote a command it cannot decode"
                    );
                }
            }
            Ok(None) => return,
            Err(err) => panic!("the server wrote a broken chunk stream: {err}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    // Switches: accept or refuse publishes and plays, ask for a reconnect midway.
    let switches = input.u8();
    let wire = input.rest();

    let mut session = Session::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 1935)));
    let mut reader = Reader::new();
    let mut client_view = Reader::new();
    let mut server_out = BytesMut::new();
    let mut buf = BytesMut::from(wire);
    session.bytes_received(wire.len());
    loop {
        let message = match reader.read(&mut buf) {
            Ok(Some(message)) => message,
            Ok(None) | Err(_) => break,
        };
        if session.handle_message(message).is_err() {
            break;
        }
        while let Some(event) = session.next_event() {
            match event {
                SessionEvent::PublishRequested(request) => {
                    assert!(!request.stream_name.contains('?'));
                    if switches & 1 == 0 {
                        session.accept_publish();
                    } else {
                        session.refuse_publish(&Refusal::bad_name(request.stream_name));
                    }
                }
                SessionEvent::MediaReceived(media) => match media.kind {
                    MediaKind::Video => drop(parse_video_tag(&media.body)),
                    MediaKind::Audio => drop(parse_audio_tag(&media.body)),
                    MediaKind::Data => drop(amf0::decode_all(&media.body)),
                },
                SessionEvent::PublishEnded | SessionEvent::PlayEnded => {}
                SessionEvent::PlayRequested(request) => {
                    assert!(!request.stream_name.contains('?'));
                    if switches & 4 == 0 {
                        session.accept_play();
                        session.write_tag(&liverec_mux::flv::live::LiveTag {
                            tag_type: type_id::AUDIO,
                            timestamp: 0,
                            head: liverec_mux::flv::TagHead::default(),
                            payload: bytes::Bytes::from_static(&[0xaf, 0x01, 0x21]),
                        });
                    } else {
                        session.refuse_play(&Refusal::new(
                            Refusal::PLAY_NOT_FOUND,
                            request.stream_name,
                        ));
                    }
                }
            }
        }
        if switches & 2 != 0 && session.is_publishing() {
            session.request_reconnect();
        }
        session.acknowledge();
        server_out.extend_from_slice(session.output());
        session.output().clear();
        check_output(&mut client_view, &mut server_out);
        if session.is_closed() {
            break;
        }
    }
});
