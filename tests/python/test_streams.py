"""DescribeLiveStreamsOnlineList through the current SDK while ffmpeg publishes."""

from __future__ import annotations

import calendar
import time

from alibabacloud_live20161101 import models as live_models

from liverec_support import ALIBABA_TIME, assert_ok

DOMAIN = "streams.example.com"
# DESIGN.md, "Codec ids": FLV ids.
H264, AAC = 7, 10
GONE_TIMEOUT_SECS = 10.0


def online(client, domain: str = DOMAIN, **fields):
    resp = client.describe_live_streams_online_list(
        live_models.DescribeLiveStreamsOnlineListRequest(domain_name=domain, **fields)
    )
    assert_ok(resp)
    return resp.body


def entries(body) -> list:
    return list(body.online_info.live_stream_online_info) if body.online_info and body.online_info.live_stream_online_info else []


def test_online_list_shows_what_is_publishing(server, publish):
    client = server.client()
    assert online(client).total_num == 0

    pubs = [publish(server.rtmp_url("live", name, DOMAIN)) for name in ("cam1", "cam2")]
    publish(server.rtmp_url("live", "elsewhere", "other.example.com"))
    started = time.time()
    for name in ("cam1", "cam2"):
        server.wait_publishing(DOMAIN, "live", name)
    for pub in pubs:
        pub.wait_position(2.0)

    body = online(client)
    assert (body.total_num, body.page_num) == (2, 1), body.to_map()
    assert body.total_page == 1 and isinstance(body.page_size, int), body.to_map()
    by_name = {e.stream_name: e for e in entries(body)}
    assert set(by_name) == {"cam1", "cam2"}, body.to_map()
    info = by_name["cam1"]
    assert (info.domain_name, info.app_name) == (DOMAIN, "live")
    assert ALIBABA_TIME.match(info.publish_time or ""), info.publish_time
    published = calendar.timegm(time.strptime(info.publish_time, "%Y-%m-%dT%H:%M:%SZ"))
    assert abs(published - started) < 10, (info.publish_time, started)
    assert (info.video_codec_id, info.audio_codec_id) == (H264, AAC), info.to_map()
    assert (info.width, info.height) == (320, 240), info.to_map()
    assert info.client_ip == "127.0.0.1", info.to_map()
    if info.frame_rate is not None:
        assert 20 <= info.frame_rate <= 30, info.to_map()
    if info.publish_url is not None:
        assert "/live/cam1" in info.publish_url, info.to_map()

    one = online(client, app_name="live", stream_name="cam2", query_type="strict")
    assert [e.stream_name for e in entries(one)] == ["cam2"], one.to_map()
    assert online(client, app_name="nope").total_num == 0

    paged = online(client, page_size=1, page_num=2)
    assert (paged.total_num, paged.total_page, paged.page_num, paged.page_size) == (2, 2, 2, 1), paged.to_map()
    assert len(entries(paged)) == 1

    pubs[0].stop()
    deadline = time.monotonic() + GONE_TIMEOUT_SECS
    while {e.stream_name for e in entries(online(client))} != {"cam2"}:
        assert time.monotonic() < deadline, "cam1 still listed after its publisher left"
        time.sleep(0.2)
