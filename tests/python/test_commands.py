"""RealTimeRecordCommand through the current SDK, judged by the files it produces: every
recorded packet is matched (by MD5) to its place in the published asset, so a lost, duplicated
or foreign frame, a missing pre-roll or a late cut shows up exactly.

Positions are media seconds within one pass of the 10 s asset; the publisher reports how far
it has sent, and commands are sent mid-GOP so the keyframe they refer to is unambiguous."""

from __future__ import annotations

import sqlite3
import time

from liverec_support import (
    AT_ONCE_SECS,
    FILE_TIMEOUT_SECS,
    FPS,
    GOP_SECS,
    POSITION_SLACK_SECS,
    add_config,
    assert_ok,
    assert_valid_recording,
    command,
    expect_error,
    manual_config,
    max_video_step_secs,
    packets,
    runs,
    source,
    wrap_diff,
)

DOMAIN = "rec.example.com"
APP = "live"
STREAM = "cam1"
BUCKET = "rec"
# Longest DTS step inside a recording whose pauses are bridged (a frame is 40 ms).
MAX_STEP_SECS = 0.2


def loop_secs() -> float:
    return len(source().video) / FPS


def secs(index: int) -> float:
    return index / FPS


def setup_manual(server, publish, delay: int = 15, formats: list[dict] | None = None):
    """A manual (OnDemand=7) config made through the API, and a publisher that is live."""
    client = server.client()
    assert_ok(manual_config(client, DOMAIN, APP, delay=delay, formats=formats, bucket=BUCKET))
    pub = publish(server.rtmp_url(APP, STREAM, DOMAIN))
    server.wait_publishing(DOMAIN, APP, STREAM)
    return client, pub


def send(client, cmd: str, domain: str = DOMAIN, app: str = APP, stream: str = STREAM):
    resp = command(client, domain, app, stream, cmd)
    assert_ok(resp)
    return resp


def assert_starts_at_keyframe_before(index: int, at: float, what: str) -> None:
    """`index` is the keyframe at or before position `at` (pre-roll: the command's moment is in
    the file, at most one GOP after its start)."""
    src = source()
    assert index in src.keyframes, f"{what}: starts at packet {index}, not a keyframe"
    lead = wrap_diff(at, secs(index), loop_secs())
    assert 0 < lead < GOP_SECS, (
        f"{what}: starts at {secs(index):.2f} s, command at {at:.2f} s: "
        "expected the latest keyframe before the command"
    )


def assert_starts_at_keyframe_after(index: int, at: float, what: str) -> None:
    """`index` is the first keyframe after position `at` (restart and cycle cuts)."""
    src = source()
    assert index in src.keyframes, f"{what}: starts at packet {index}, not a keyframe"
    wait = wrap_diff(secs(index), at, loop_secs())
    assert 0 < wait < GOP_SECS, (
        f"{what}: starts at {secs(index):.2f} s, command at {at:.2f} s: "
        "expected the first keyframe after the command"
    )


def assert_ends_near(index: int, at: float, what: str) -> None:
    """The last frame written is the one being published when `stop` arrived."""
    off = wrap_diff(secs(index), at, loop_secs())
    assert -POSITION_SLACK_SECS - 0.1 <= off <= POSITION_SLACK_SECS + 0.25, (
        f"{what}: last frame at {secs(index):.2f} s, stop at {at:.2f} s"
    )


def test_start_records_from_the_keyframe_before_the_command(server, publish):
    client, pub = setup_manual(server, publish)
    at_start = pub.wait_mid_gop(after=2.0)
    sent_at = time.time()
    send(client, "start")
    at_stop = pub.wait_mid_gop(after=at_start + 2.0)
    send(client, "stop")
    send(client, "cancel_delay")
    [file] = server.wait_for_files(BUCKET, "mp4", 1, timeout=AT_ONCE_SECS)
    assert file.relative_to(server.bucket_dir(BUCKET)).parts[:4] == ("record", DOMAIN, APP, STREAM), file

    probe = assert_valid_recording(file)
    pk = packets(file)
    src = source()
    video = src.video_positions(pk.video, file.name)
    assert len(runs(video, len(src.video))) == 1, f"frames missing inside the recording: {runs(video, len(src.video))}"
    assert_starts_at_keyframe_before(video[0], at_start, file.name)
    assert_ends_near(video[-1], at_stop, file.name)
    audio = src.audio_positions(pk.audio, file.name)
    assert len(runs(audio, len(src.audio))) == 1, "audio frames missing inside the recording"
    assert probe.video_frames == len(video)
    assert abs(probe.duration - len(video) / FPS) < 0.3, (probe.duration, len(video))
    assert max_video_step_secs(pk) < MAX_STEP_SECS

    # The index says when the file's first frame arrived: before the command, by the pre-roll.
    [(start_ms, end_ms)] = recording_times(server, count=1)
    lead = wrap_diff(at_start, secs(video[0]), loop_secs())
    start = start_ms / 1000
    assert start < sent_at - 0.2, f"start time {start:.3f} is not before the command at {sent_at:.3f}"
    assert abs(start - (sent_at - lead)) <= POSITION_SLACK_SECS + 0.1, (start, sent_at, lead)
    assert abs((end_ms - start_ms) / 1000 - len(video) / FPS) < 0.5, (start_ms, end_ms, len(video))


def recording_times(server, count: int) -> list[tuple[int, int]]:
    """(start_time, end_time) of the rows of the recordings index, Unix ms, once there are
    `count` (a file is indexed right after it gets its final name)."""
    deadline = time.monotonic() + AT_ONCE_SECS
    while True:
        db = sqlite3.connect(server.data_dir / "liverec.db")
        try:
            rows = db.execute("SELECT start_time, end_time FROM recordings ORDER BY start_time").fetchall()
        finally:
            db.close()
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_start_right_after_cancel_delay_pre_rolls_into_the_previous_file(server, publish):
    """A new recording begins at the cached keyframe even when the previous recording already
    wrote that GOP: the moment of `start` is in the new file (the two files overlap)."""
    client, pub = setup_manual(server, publish)
    at_start = pub.wait_mid_gop(after=1.0)
    send(client, "start")
    at_end = pub.wait_mid_gop(after=at_start + 2.0)
    send(client, "stop")
    send(client, "cancel_delay")
    at_again = pub.position
    send(client, "start")
    server.wait_for_files(BUCKET, "mp4", 1, timeout=AT_ONCE_SECS)
    pub.wait_position(at_again + 1.5)
    send(client, "stop")
    send(client, "cancel_delay")
    first, second = server.wait_for_files(BUCKET, "mp4", 2, timeout=AT_ONCE_SECS)

    src = source()
    old = src.video_positions(packets(first).video, first.name)
    assert_valid_recording(second)
    new = src.video_positions(packets(second).video, second.name)
    assert_ends_near(old[-1], at_end, "first file")
    assert_starts_at_keyframe_before(new[0], at_again, "second file")
    assert new[0] in old, "the second file's pre-roll is the first file's last GOP"
    assert len(runs(new, len(src.video))) == 1, "frames missing inside the second file"


def test_stop_then_cancel_delay_gives_the_file_at_once(server, publish):
    client, pub = setup_manual(server, publish, delay=600, formats=[{"Format": "mp4"}, {"Format": "flv"}])
    pub.wait_position(1.5)
    send(client, "start")
    pub.wait_position(pub.position + 2.0)
    send(client, "stop")
    send(client, "stop")  # stop while paused: no change, success
    # Paused, waiting out a DelayTime of 10 minutes: no file yet.
    server.assert_no_new_files(BUCKET, "mp4", 0, for_secs=2.0)
    assert server.files(BUCKET, "flv") == []

    sent = time.monotonic()
    send(client, "cancel_delay")
    [mp4] = server.wait_for_files(BUCKET, "mp4", 1, timeout=AT_ONCE_SECS)
    [flv] = server.wait_for_files(BUCKET, "flv", 1, timeout=AT_ONCE_SECS)
    elapsed = time.monotonic() - sent
    assert elapsed < AT_ONCE_SECS, f"files took {elapsed:.1f} s after cancel_delay"
    src = source()
    lengths = []
    for file in (mp4, flv):
        assert_valid_recording(file)
        video = src.video_positions(packets(file).video, file.name)
        assert len(runs(video, len(src.video))) == 1
        lengths.append(len(video))
    assert lengths[0] == lengths[1], f"mp4 and flv of one recording differ: {lengths}"
    # cancel_delay ended the recording: nothing more is written, though the stream goes on.
    send(client, "cancel_delay")
    server.assert_no_new_files(BUCKET, "mp4", 1, for_secs=1.0)


def test_start_stop_start_within_delay_time_gives_one_recording(server, publish):
    client, pub = setup_manual(server, publish, delay=15)
    at_start = pub.wait_mid_gop(after=1.0)
    send(client, "start")
    at_stop = pub.wait_mid_gop(after=at_start + 1.5)
    send(client, "stop")
    at_resume = pub.wait_mid_gop(after=at_stop + 2.0)
    send(client, "start")
    at_end = pub.wait_mid_gop(after=at_resume + 1.5)
    send(client, "stop")
    send(client, "cancel_delay")
    [file] = server.wait_for_files(BUCKET, "mp4", 1, timeout=AT_ONCE_SECS)
    server.assert_no_new_files(BUCKET, "mp4", 1, for_secs=1.5)

    probe = assert_valid_recording(file)
    pk = packets(file)
    src = source()
    video = src.video_positions(pk.video, file.name)
    parts = runs(video, len(src.video))
    assert len(parts) == 2, f"expected the two recorded stretches, got runs starting at {[r[0] for r in parts]}"
    first, second = parts
    assert_starts_at_keyframe_before(first[0], at_start, "first stretch")
    assert_ends_near(first[-1], at_stop, "first stretch")
    assert_starts_at_keyframe_before(second[0], at_resume, "resumed stretch")
    assert_ends_near(second[-1], at_end, "resumed stretch")
    assert wrap_diff(secs(second[0]), secs(first[-1]), loop_secs()) > 0, "a frame was written twice"
    assert len(set(video)) == len(video), "a frame was written twice"
    audio = src.audio_positions(pk.audio, file.name)
    assert len(set(audio)) == len(audio), "an audio frame was written twice"
    # The pause is bridged: one continuous timeline, no frozen gap.
    assert max_video_step_secs(pk) < MAX_STEP_SECS, "the pause left a gap in the timeline"
    assert abs(probe.duration - len(video) / FPS) < 0.3, (probe.duration, len(video))


def test_restart_cuts_two_files_without_losing_or_repeating_a_frame(server, publish):
    client, pub = setup_manual(server, publish, delay=15)
    at_start = pub.wait_mid_gop(after=1.0)
    send(client, "start")
    at_restart = pub.wait_mid_gop(after=at_start + 2.0)
    send(client, "restart")
    # The old file is finalized at the next keyframe, while the new recording goes on.
    server.wait_for_files(BUCKET, "mp4", 1, timeout=GOP_SECS + AT_ONCE_SECS)
    at_stop = pub.wait_mid_gop(after=at_restart + 2.0)
    send(client, "stop")
    send(client, "cancel_delay")
    files = server.wait_for_files(BUCKET, "mp4", 2, timeout=AT_ONCE_SECS)
    server.assert_no_new_files(BUCKET, "mp4", 2, for_secs=1.0)

    src = source()
    video, audio = [], []
    for file in files:
        probe = assert_valid_recording(file)
        pk = packets(file)
        v = src.video_positions(pk.video, file.name)
        assert len(runs(v, len(src.video))) == 1, f"{file.name}: frames missing inside"
        assert probe.video_frames == len(v)
        video.append(v)
        audio.append(src.audio_positions(pk.audio, file.name))
    old, new = video
    assert_starts_at_keyframe_before(old[0], at_start, "first file")
    assert_starts_at_keyframe_after(new[0], at_restart, "second file")
    assert_ends_near(new[-1], at_stop, "second file")
    assert new[0] == (old[-1] + 1) % len(src.video), (
        f"at the cut: first file ends with packet {old[-1]}, second starts with {new[0]}"
    )
    assert len(runs(old + new, len(src.video))) == 1, "video frames lost or repeated across the cut"
    assert len(runs(audio[0] + audio[1], len(src.audio))) == 1, "audio frames lost or repeated across the cut"


def test_restart_while_paused_finalizes_and_starts_a_new_recording(server, publish):
    client, pub = setup_manual(server, publish, delay=600)
    at_start = pub.wait_mid_gop(after=1.0)
    send(client, "start")
    pub.wait_position(at_start + 1.5)
    send(client, "stop")
    at_restart = pub.wait_mid_gop(after=pub.position + 1.5)
    send(client, "restart")
    [old] = server.wait_for_files(BUCKET, "mp4", 1, timeout=AT_ONCE_SECS)
    pub.wait_position(at_restart + 1.5)
    send(client, "stop")
    send(client, "cancel_delay")
    files = server.wait_for_files(BUCKET, "mp4", 2, timeout=AT_ONCE_SECS)
    assert files[0] == old
    src = source()
    new = src.video_positions(packets(files[1]).video, files[1].name)
    assert_valid_recording(files[1])
    assert_starts_at_keyframe_before(new[0], at_restart, "recording after restart")


def test_stop_generates_the_file_once_the_configs_delay_time_has_passed(server, publish):
    delay = 15  # the smallest DelayTime the API takes
    client, pub = setup_manual(server, publish, delay=delay)
    pub.wait_position(1.5)
    send(client, "start")
    pub.wait_position(pub.position + 1.5)
    send(client, "stop")
    stopped = time.monotonic()
    server.assert_no_new_files(BUCKET, "mp4", 0, for_secs=delay - 2.0)
    [file] = server.wait_for_files(BUCKET, "mp4", 1, timeout=2.0 + AT_ONCE_SECS)
    elapsed = time.monotonic() - stopped
    assert delay - 0.5 <= elapsed <= delay + AT_ONCE_SECS, f"file generated {elapsed:.1f} s after stop"
    assert_valid_recording(file)


def test_commands_with_nothing_to_do_succeed_and_restart_from_idle_starts(server, publish):
    client, pub = setup_manual(server, publish)
    pub.wait_position(1.5)
    send(client, "stop")
    send(client, "cancel_delay")
    server.assert_no_new_files(BUCKET, "mp4", 0, for_secs=1.5)
    at_restart = pub.wait_mid_gop(after=pub.position)
    send(client, "restart")
    pub.wait_position(at_restart + 1.5)
    send(client, "stop")
    send(client, "cancel_delay")
    [file] = server.wait_for_files(BUCKET, "mp4", 1, timeout=AT_ONCE_SECS)
    assert_valid_recording(file)
    video = source().video_positions(packets(file).video, file.name)
    assert_starts_at_keyframe_before(video[0], at_restart, "restart from idle")


def test_manual_recording_ends_with_the_stream_and_does_not_restart(start_server, publish):
    # The built-in config of the config file, manual with a 2 s delay: seconds, not minutes.
    server = start_server(record={"mode": "manual", "delay_secs": 2})
    client = server.client()
    url = server.rtmp_url(APP, STREAM, DOMAIN)
    pub = publish(url)
    server.wait_publishing(DOMAIN, APP, STREAM)
    pub.wait_position(1.5)
    send(client, "start")
    pub.wait_position(pub.position + 2.0)
    pub.stop()
    [file] = server.wait_for_files("default", "mp4", 1, timeout=2.0 + FILE_TIMEOUT_SECS)
    assert_valid_recording(file)

    again = publish(url)
    server.wait_for_log("publish started", f"stream={DOMAIN}/{APP}/{STREAM}", count=2)
    again.wait_position(3.0)
    again.stop()
    # Had the return restarted the recording, its file would appear 2 s after this stop.
    server.assert_no_new_files("default", "mp4", 1, for_secs=4.0)


def test_automatic_config_from_the_api_records_the_whole_publish(server, publish):
    client = server.client()
    prefix = "auto/{AppName}/{StreamName}/{EscapedStartTime}_{EscapedEndTime}"
    assert_ok(add_config(client, DOMAIN, APP, [{"Format": "mp4", "OssObjectPrefix": prefix}],
                         bucket="autobkt", on_demand=0, delay_time=15))
    pub = publish(server.rtmp_url(APP, STREAM, DOMAIN), loop=False)
    # No config for this app of the domain: the built-in one no longer applies there.
    other = publish(server.rtmp_url("other", STREAM, DOMAIN), loop=False)
    server.wait_publishing(DOMAIN, APP, STREAM)
    pub.wait_position(1.0)
    expect_error(lambda: command(client, DOMAIN, APP, STREAM, "start"), 409, "TaskAlreadyStarted",
                 "Task has already started.")
    assert pub.wait() == 0, pub.stderr()
    assert other.wait() == 0, other.stderr()
    # The publisher is gone: the recording waits out DelayTime (15 s) unless told otherwise.
    server.assert_no_new_files("autobkt", "mp4", 0, for_secs=1.0)
    send(client, "cancel_delay")
    [file] = server.wait_for_files("autobkt", "mp4", 1, timeout=AT_ONCE_SECS)
    assert file.relative_to(server.bucket_dir("autobkt")).parts[:3] == ("auto", APP, STREAM), file
    assert_valid_recording(file)
    src = source()
    video = src.video_positions(packets(file).video, file.name)
    assert video == list(range(len(src.video))), "every published video frame, in order"
    assert server.files("default", "mp4") == [], "the built-in config was replaced for this domain"


def test_the_most_specific_config_wins(server, publish):
    client = server.client()
    configs = [  # (app, stream, bucket)
        ("*", None, "any"),
        ("live", None, "app"),
        ("live", "s1", "stream"),
        ("*", "s2", "star-stream"),
    ]
    for app, stream, bucket in configs:
        assert_ok(add_config(client, DOMAIN, app, [{"Format": "mp4"}], stream=stream, bucket=bucket,
                             on_demand=0, delay_time=15))
    expected = {("live", "s1"): "stream", ("live", "s2"): "app", ("other", "s2"): "star-stream",
                ("other", "s3"): "any"}
    pubs = {key: publish(server.rtmp_url(key[0], key[1], DOMAIN)) for key in expected}
    for (app, stream), pub in pubs.items():
        server.wait_publishing(DOMAIN, app, stream)
    for pub in pubs.values():
        pub.wait_position(1.5)
    for app, stream in expected:
        send(client, "stop", app=app, stream=stream)
        send(client, "cancel_delay", app=app, stream=stream)
    for (app, stream), bucket in expected.items():
        [file] = server.wait_for_files(bucket, "mp4", 1, timeout=AT_ONCE_SECS)
        assert f"/{app}/{stream}/" in str(file), f"{app}/{stream} should be in bucket {bucket}: {file}"
    assert server.files("default", "mp4") == []


def test_api_configs_still_drive_the_recorder_after_a_restart(server, publish):
    client = server.client()
    assert_ok(manual_config(client, DOMAIN, APP, delay=15, bucket=BUCKET))
    assert server.stop() == 0
    server.start()
    client = server.client()
    pub = publish(server.rtmp_url(APP, STREAM, DOMAIN))
    server.wait_publishing(DOMAIN, APP, STREAM)
    pub.wait_position(2.0)
    # Manual: nothing is recorded until the command (the built-in config is automatic).
    assert server.log_lines("recording started") == [], "a recording started without a command"
    send(client, "start")
    pub.wait_position(pub.position + 1.5)
    send(client, "stop")
    send(client, "cancel_delay")
    [file] = server.wait_for_files(BUCKET, "mp4", 1, timeout=AT_ONCE_SECS)
    assert_valid_recording(file)
    assert server.files("default", "mp4") == []
