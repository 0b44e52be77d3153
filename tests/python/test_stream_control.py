"""ForbidLiveStream, ResumeLiveStream, DescribeLiveStreamsBlockList and
DescribeLiveStreamsPublishList through the current SDK, with real ffmpeg publishers: a forbidden
publisher is dropped at once and refused until resumed; Oneshot only cuts the publish."""

from __future__ import annotations

import time

from alibabacloud_live20161101 import models as live_models

from liverec_support import ALIBABA_TIME, assert_decodes_cleanly, assert_ok, expect_error

DOMAIN = "control.example.com"
STREAM_URL = f"{DOMAIN}/live/cam"
EXIT_TIMEOUT_SECS = 15


def forbid(client, stream="cam", **fields):
    return client.forbid_live_stream(live_models.ForbidLiveStreamRequest(
        domain_name=DOMAIN, app_name="live", stream_name=stream, live_stream_type="publisher",
        **fields))


def resume(client, stream="cam"):
    return client.resume_live_stream(live_models.ResumeLiveStreamRequest(
        domain_name=DOMAIN, app_name="live", stream_name=stream, live_stream_type="publisher"))


def block_list(client, **fields):
    resp = client.describe_live_streams_block_list(
        live_models.DescribeLiveStreamsBlockListRequest(domain_name=DOMAIN, **fields))
    assert_ok(resp)
    body = resp.body
    urls = list(body.stream_urls.stream_url) if body.stream_urls and body.stream_urls.stream_url else []
    return body, urls


def publish_list(client, **fields):
    now = time.time()
    resp = client.describe_live_streams_publish_list(live_models.DescribeLiveStreamsPublishListRequest(
        domain_name=DOMAIN,
        start_time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 3600)),
        end_time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 60)), **fields))
    assert_ok(resp)
    body = resp.body
    items = body.publish_info.live_stream_publish_info if body.publish_info and body.publish_info.live_stream_publish_info else []
    return body, list(items)


def test_a_forbidden_stream_is_dropped_and_refused_until_resumed(server, publish):
    client = server.client()
    url = server.rtmp_url("live", "cam", DOMAIN)
    first = publish(url)
    server.wait_publishing(DOMAIN, "live", "cam")
    first.wait_position(3.0)

    assert_ok(forbid(client))
    assert first.wait(EXIT_TIMEOUT_SECS) != 0, "ffmpeg should fail when its publish is dropped"
    server.wait_for_log("publish stopped by the server", "forbidden")
    # Its recording ends as for any interruption (DelayTime of the test config) and decodes.
    [mp4] = server.wait_for_files("default", "mp4", 1)
    assert_decodes_cleanly(mp4)

    body, urls = block_list(client)
    assert urls == [STREAM_URL], body.to_map()
    assert (body.domain_name, body.total_num, body.page_num) == (DOMAIN, 1, 1), body.to_map()
    expect_error(lambda: forbid(client), 400, "ConfigAlreadyExists", "Config has already exist.")

    refused = publish(url, loop=False)
    assert refused.wait(EXIT_TIMEOUT_SECS) != 0, "a forbidden stream must be refused"
    server.wait_for_log("publish refused: the stream is forbidden", f"stream={STREAM_URL}")
    # Other streams of the domain are not affected.
    other = publish(server.rtmp_url("live", "cam2", DOMAIN))
    server.wait_publishing(DOMAIN, "live", "cam2")
    other.stop()

    assert_ok(resume(client))
    assert block_list(client)[1] == []
    again = publish(url)
    server.wait_for_log("publish started", f"stream={STREAM_URL}", count=2)
    again.wait_position(1.0)

    # Oneshot cuts this publish only: the stream is not listed and may publish again at once.
    assert_ok(forbid(client, oneshot="yes"))
    assert again.wait(EXIT_TIMEOUT_SECS) != 0
    assert block_list(client)[1] == []
    last = publish(url)
    server.wait_for_log("publish started", f"stream={STREAM_URL}", count=3)
    last.wait_position(1.0)

    body, items = publish_list(client, stream_name="cam", query_type="strict")
    assert body.total_num == 3, body.to_map()
    assert [i.stream_name for i in items] == ["cam"] * 3
    for item in items:
        assert (item.domain_name, item.app_name, item.stream_url) == (DOMAIN, "live", STREAM_URL)
        assert item.client_addr == "127.0.0.1", item.to_map()
        assert ALIBABA_TIME.match(item.publish_time), item.to_map()
        assert item.publish_url == f"rtmp://{STREAM_URL}", item.to_map()
    times = [i.publish_time for i in items]
    assert times == sorted(times), "publish_time_asc is the default order"
    assert all(ALIBABA_TIME.match(i.stop_time or "") for i in items[:2]), [i.to_map() for i in items]
    assert items[2].stop_time is None, "the live publish has no StopTime yet"

    body, items = publish_list(client, stream_name="CAM", order_by="publish_time_desc",
                               page_size=2, page_number=1)
    assert (body.total_num, body.total_page, len(items)) == (4, 2, 2), body.to_map()
    assert items[0].stop_time is None, "newest first"


def test_bad_parameters_are_refused(server):
    client = server.client()
    expect_error(lambda: forbid(client, resume_time="2030-01-01 00:00:00"), 400,
                 "InvalidResumeTime.Malformed", "Specified parameter ResumeTime is not valid.")
    expect_error(lambda: forbid(client, resume_time="2001-01-01T00:00:00Z"), 400,
                 "InvalidResumeTime.Malformed")
    expect_error(lambda: client.forbid_live_stream(live_models.ForbidLiveStreamRequest(
        domain_name=DOMAIN, app_name="live", stream_name="cam", live_stream_type="player")),
        400, "InvalidParameter")
    expect_error(lambda: forbid(client, oneshot="true"), 400, "InvalidParameter")
    # A ResumeTime in the future is kept; resuming a stream that is not forbidden succeeds.
    assert_ok(forbid(client, stream="later", resume_time="2030-01-01T00:00:00Z"))
    assert block_list(client)[1] == [f"{DOMAIN}/live/later"]
    assert_ok(resume(client, stream="never-forbidden"))
    expect_error(lambda: client.describe_live_streams_publish_list(
        live_models.DescribeLiveStreamsPublishListRequest(
            domain_name=DOMAIN, start_time="2026-01-01T00:00:00Z", end_time="2026-03-01T00:00:00Z")),
        400, "InvalidEndTime.Mismatch")
