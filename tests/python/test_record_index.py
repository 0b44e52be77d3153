"""The record index through the unchanged SDKs, and playback of its RecordUrls over HTTP.

One server per xdist worker records four streams (the module fixture `rec`), each for the
concern that may change it:
- A (`cam`, built-in config of the config file: MP4 + HLS/TS + CMAF, 5 s cycles, 2 s slices,
  DelayTime 1 s): two sessions of the 10 s asset, so 2 files per format per session. Only read.
- B (`cmaf.example.com`, an API config: CMAF only, bucket `archive`, an OssEndpoint): one
  session, finalized with `cancel_delay`; CreateLiveStreamRecordIndexFiles over CMAF only.
- C (`del`): one session, for DeleteLiveStreamRecordIndexFiles.
- D (`make`): one session, for CreateLiveStreamRecordIndexFiles over TS segments.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import math
import re
import sqlite3
import subprocess
import time
import urllib.parse
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest
from alibabacloud_live20161101 import models as m
from aliyunsdklive.request.v20161101.DescribeLiveStreamRecordIndexFileRequest import (
    DescribeLiveStreamRecordIndexFileRequest,
)
from aliyunsdklive.request.v20161101.DescribeLiveStreamRecordIndexFilesRequest import (
    DescribeLiveStreamRecordIndexFilesRequest,
)

from liverec_support import (
    ALIBABA_TIME,
    FILE_TIMEOUT_SECS,
    Publisher,
    Server,
    UUID_UPPER,
    add_config,
    assert_ok,
    command,
    expect_error,
    expect_legacy_error,
    header,
    liverec_bin,
    require_asset,
)

DOMAIN = "idx.example.com"
APP = "live"
A, C, D = "cam", "del", "make"
B_DOMAIN = "cmaf.example.com"
B = "cam"
BUCKET = "idx"
B_BUCKET = "archive"
B_ENDPOINT = "oss-cn-shanghai.aliyuncs.com"
# Names with a colon and spaces (percent-encoded in RecordUrls and signed playlists), and
# segments in another directory than their playlist.
B_PREFIX = "record/{DomainName}/{AppName}/{StreamName}/{StartTime} to {EndTime}"
B_SLICES = "record/{AppName}/{StreamName}/seg {UnixTimestamp}_{Sequence}"
OBJECT_PREFIX = "record/{DomainName}/{AppName}/{StreamName}/{EscapedStartTime}_{EscapedEndTime}"
EXTENSIONS = {"mp4": ".mp4", "m3u8": ".m3u8", "cmaf": ".cmaf.m3u8"}
# Files per format per 10 s session with 5 s cycles.
FILES_PER_SESSION = 2
SIGNED = re.compile(r"\?Expires=(\d+)&Signature=([0-9a-f]{64})$")
MISMATCH = "Specified end time does not math the specified start time."


def utc(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def from_utc(s: str) -> int:
    return int(time.mktime(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone)


# ---------------------------------------------------------------------------------------------
# SDK calls


def list_files(client, stream: str, start: float, end: float, domain: str = DOMAIN, **fields):
    return client.describe_live_stream_record_index_files(
        m.DescribeLiveStreamRecordIndexFilesRequest(
            domain_name=domain, app_name=APP, stream_name=stream, start_time=utc(start), end_time=utc(end),
            **fields,
        )
    )


def all_rows(client, stream: str, start: float, end: float, domain: str = DOMAIN) -> list[dict]:
    body = list_files(client, stream, start, end, domain=domain, page_size=30).body.to_map()
    assert body["TotalNum"] <= 30, body
    return body["RecordIndexInfoList"]["RecordIndexInfo"]


def get_file(client, stream: str, record_id: str, domain: str = DOMAIN):
    return client.describe_live_stream_record_index_file(
        m.DescribeLiveStreamRecordIndexFileRequest(
            domain_name=domain, app_name=APP, stream_name=stream, record_id=record_id
        )
    )


def content(client, stream: str, start: float, end: float, domain: str = DOMAIN):
    return client.describe_live_stream_record_content(
        m.DescribeLiveStreamRecordContentRequest(
            domain_name=domain, app_name=APP, stream_name=stream, start_time=utc(start), end_time=utc(end)
        )
    )


def create(client, stream: str, start: float, end: float, obj: str, domain: str = DOMAIN,
           bucket: str = BUCKET, endpoint: str = "oss-cn-beijing.aliyuncs.com", **fields):
    return client.create_live_stream_record_index_files(
        m.CreateLiveStreamRecordIndexFilesRequest(
            domain_name=domain, app_name=APP, stream_name=stream, start_time=utc(start), end_time=utc(end),
            oss_bucket=bucket, oss_endpoint=endpoint, oss_object=obj, **fields,
        )
    )


def delete(client, stream: str, ids: list[str], remove_file: bool | None, domain: str = DOMAIN):
    return client.delete_live_stream_record_index_files(
        m.DeleteLiveStreamRecordIndexFilesRequest(
            domain_name=domain, app_name=APP, stream_name=stream, record_id=ids, remove_file=remove_file
        )
    )


# ---------------------------------------------------------------------------------------------
# HTTP


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


def fetch(url: str, method: str = "GET", headers: dict | None = None) -> Response:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.netloc, timeout=15)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


def decode_errors(source: str) -> str:
    """The brief's decode check: what ffmpeg says decoding `source` (a path or URL); empty = clean."""
    out = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", source, "-fps_mode", "passthrough",
         "-enc_time_base:v", "1:90000", "-f", "null", "-"],
        capture_output=True, check=False, timeout=120,
    )
    text = out.stderr.decode(errors="replace").strip()
    return text if text or out.returncode == 0 else f"exit code {out.returncode}"


def playlist_uris(text: str) -> list[str]:
    """Segment URIs and EXT-X-MAP URIs of a media playlist, in order."""
    uris = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#EXT-X-MAP:"):
            uris.append(re.search(r'URI="([^"]+)"', line).group(1))
        elif line and not line.startswith("#"):
            uris.append(line)
    return uris


# ---------------------------------------------------------------------------------------------
# The recordings


@dataclass
class Recorded:
    server: Server
    t0: float  # before anything was published
    split: float  # after session 1 of A was indexed, before session 2 started (whole seconds)
    t1: float  # after everything was indexed

    @property
    def client(self):
        return self.server.client()

    def bucket(self, name: str = BUCKET) -> Path:
        return self.server.bucket_dir(name)

    def rows(self, stream: str, domain: str = DOMAIN) -> list[dict]:
        return all_rows(self.client, stream, self.t0 - 60, self.t1 + 60, domain=domain)

    def vod_secret(self) -> bytes:
        with sqlite3.connect(self.server.data_dir / "liverec.db") as db:
            (value,) = db.execute("SELECT value FROM server_secrets WHERE name = 'vod'").fetchone()
        return value.encode()


def wait_rows(client, stream: str, start: float, count: int, domain: str = DOMAIN) -> None:
    """Waits until the stream has `count` index rows (and no more)."""
    deadline = time.monotonic() + FILE_TIMEOUT_SECS
    while True:
        total = list_files(client, stream, start, time.time() + 60, domain=domain).body.total_num
        assert total <= count, f"{stream}: {total} rows, expected {count}"
        if total == count:
            return
        assert time.monotonic() < deadline, f"{stream}: {total} of {count} rows after {FILE_TIMEOUT_SECS} s"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def rec(tmp_path_factory):
    require_asset()
    workdir = tmp_path_factory.mktemp("record_index")
    formats = [
        {"format": "mp4", "cycle_secs": 5},
        {"format": "m3u8", "cycle_secs": 5, "slice_secs": 2},
        {"format": "cmaf", "cycle_secs": 5, "slice_secs": 2},
    ]
    server = Server(liverec_bin(), workdir, record={"delay_secs": 1, "bucket": BUCKET, "formats": formats})
    server.start()
    publishers: list[Publisher] = []
    try:
        client = server.client()
        # B: an automatic API config for its own domain (API configs replace the built-in one
        # for their domain only).
        assert_ok(add_config(client, B_DOMAIN, APP, [{"Format": "cmaf", "CycleDuration": 300, "SliceDuration": 5,
                                                   "OssObjectPrefix": B_PREFIX, "SliceOssObjectPrefix": B_SLICES}],
                             bucket=B_BUCKET, endpoint=B_ENDPOINT, on_demand=0, delay_time=15))
        t0 = time.time()
        for url in (server.rtmp_url(APP, A, DOMAIN), server.rtmp_url(APP, B, B_DOMAIN),
                    server.rtmp_url(APP, C, DOMAIN), server.rtmp_url(APP, D, DOMAIN)):
            publishers.append(Publisher(url, loop=False))
        for pub in publishers:
            assert pub.wait(60) == 0, pub.stderr()
        # B waits out a DelayTime of 15 s unless told otherwise.
        server.wait_for_log("publish ended", f"stream={B_DOMAIN}/{APP}/{B}")
        assert_ok(command(client, B_DOMAIN, APP, B, "cancel_delay"))
        per_session = FILES_PER_SESSION * len(formats)
        for stream in (A, C, D):
            wait_rows(client, stream, t0 - 60, per_session)
        wait_rows(client, B, t0 - 60, 1, domain=B_DOMAIN)
        split = math.ceil(time.time())
        time.sleep(max(0.0, split - time.time()) + 0.2)
        second = Publisher(server.rtmp_url(APP, A, DOMAIN), loop=False)
        publishers.append(second)
        assert second.wait(60) == 0, second.stderr()
        wait_rows(client, A, t0 - 60, 2 * per_session)
        yield Recorded(server, t0, split, time.time())
    finally:
        for pub in publishers:
            pub.stop()
        code = server.stop()
        assert code == 0, f"liverec exited with {code}:\n{server.full_log()}"


@pytest.fixture(autouse=True)
def _attach_logs(request):
    """A failing test's report carries the shared server's log (conftest's hook)."""
    if "rec" in request.fixturenames:
        request.node.liverec_servers = [request.getfixturevalue("rec").server]


# ---------------------------------------------------------------------------------------------
# DescribeLiveStreamRecordIndexFiles / DescribeLiveStreamRecordIndexFile


def check_row(rec: Recorded, row: dict, stream: str, domain: str = DOMAIN, bucket: str = BUCKET,
              endpoint: str = "") -> None:
    assert (row["DomainName"], row["AppName"], row["StreamName"]) == (domain, APP, stream), row
    assert row["Format"] in EXTENSIONS, row
    assert (row["Width"], row["Height"]) == (320, 240), row
    assert (row["OssBucket"], row["OssEndpoint"]) == (bucket, endpoint), row
    for key in ("StartTime", "EndTime", "CreateTime"):
        assert ALIBABA_TIME.match(row[key]), row
    assert from_utc(row["StartTime"]) <= from_utc(row["EndTime"]) <= from_utc(row["CreateTime"]), row
    obj = row["OssObject"]
    assert obj.startswith(f"record/{domain}/{APP}/{stream}/") and obj.endswith(EXTENSIONS[row["Format"]]), row
    if row["Format"] == "m3u8":
        assert not obj.endswith(".cmaf.m3u8"), row
    assert (rec.bucket(bucket) / obj).is_file(), row
    assert row["RecordUrl"].startswith(
        f"http://127.0.0.1:{rec.server.api_addr.rsplit(':', 1)[1]}/vod/{bucket}/"
        + urllib.parse.quote(obj, safe="/-_.~")
        + "?Expires="
    ), row
    assert SIGNED.search(row["RecordUrl"]), row


def test_index_files_list_every_file_with_every_field(rec):
    resp = list_files(rec.client, A, rec.t0 - 60, rec.t1 + 60, page_size=30)
    assert_ok(resp)
    body = resp.body
    assert (body.total_num, body.total_page, body.page_num, body.page_size, body.order) == (12, 1, 1, 30, "asc")
    infos = body.record_index_info_list.record_index_info
    assert len(infos) == 12
    # Every field of the SDK's model is parsed.
    for info in infos:
        for attr in ("app_name", "create_time", "domain_name", "duration", "end_time", "format", "height",
                     "oss_bucket", "oss_endpoint", "oss_object", "record_id", "record_url", "start_time",
                     "stream_name", "width"):
            assert getattr(info, attr) is not None, (attr, info.to_map())
        assert isinstance(info.duration, float) and isinstance(info.width, int)
    rows = body.to_map()["RecordIndexInfoList"]["RecordIndexInfo"]
    for row in rows:
        check_row(rec, row, A)
        # 10 s sessions cut every 5 s of media.
        assert 4.5 <= row["Duration"] <= 5.6, row
    assert sorted(r["Format"] for r in rows) == sorted(["mp4", "m3u8", "cmaf"] * 4)
    assert len({r["RecordId"] for r in rows}) == 12
    assert len({r["OssObject"] for r in rows}) == 12
    created = [from_utc(r["CreateTime"]) for r in rows]
    assert created == sorted(created), "Order=asc is oldest first"


def test_index_files_paging_and_order(rec):
    client = rec.client
    asc = [r["RecordId"] for r in rec.rows(A)]
    for order, expected in (("asc", asc), ("desc", asc[::-1])):
        seen = []
        for num, size in ((1, 5), (2, 5), (3, 2)):
            body = list_files(client, A, rec.t0 - 60, rec.t1 + 60, page_size=5, page_num=num, order=order).body
            assert (body.total_num, body.total_page, body.page_num, body.page_size, body.order) == (
                12, 3, num, 5, order)
            page = body.record_index_info_list.record_index_info
            assert len(page) == size, (order, num)
            seen += [r.record_id for r in page]
        assert seen == expected, order
    body = list_files(client, A, rec.t0 - 60, rec.t1 + 60, page_size=5, page_num=4).body
    assert (body.total_num, body.total_page) == (12, 3)
    assert body.record_index_info_list.record_index_info == []
    # Defaults: page 1 of 10, ascending.
    body = list_files(client, A, rec.t0 - 60, rec.t1 + 60).body
    assert (body.page_num, body.page_size, body.order, body.total_page) == (1, 10, "asc", 2)
    assert [r.record_id for r in body.record_index_info_list.record_index_info] == asc[:10]


def test_index_files_time_ranges_overlap(rec):
    client = rec.client
    everything = rec.rows(A)
    first = [r for r in everything if from_utc(r["StartTime"]) < rec.split]
    second = [r for r in everything if from_utc(r["StartTime"]) >= rec.split]
    assert len(first) == len(second) == 6
    assert all(from_utc(r["EndTime"]) < rec.split for r in first)

    def ids(start, end):
        return sorted(r["RecordId"] for r in all_rows(client, A, start, end))

    assert ids(rec.t0 - 60, rec.split) == sorted(r["RecordId"] for r in first)
    assert ids(rec.split, rec.t1 + 60) == sorted(r["RecordId"] for r in second)
    # One second inside the first file of session 1: that file of each format, nothing else.
    start = min(from_utc(r["StartTime"]) for r in first)
    firsts = sorted(r["RecordId"] for r in first if from_utc(r["StartTime"]) <= start + 1)
    assert len(firsts) == 3
    assert ids(start + 2, start + 3) == firsts
    # Nothing before the recordings.
    body = list_files(client, A, rec.t0 - 3600, rec.t0 - 1800).body
    assert (body.total_num, body.total_page) == (0, 0)
    assert body.record_index_info_list.record_index_info == []
    # An unknown stream has no rows.
    assert list_files(client, "nobody", rec.t0 - 60, rec.t1 + 60).body.total_num == 0


def test_index_file_by_record_id(rec):
    client = rec.client
    rows = rec.rows(A)
    for row in rows[:3]:
        resp = get_file(client, A, row["RecordId"])
        assert_ok(resp)
        info = resp.body.record_index_info
        assert info.format is not None and info.width == 320 and info.height == 240
        one = resp.body.to_map()["RecordIndexInfo"]
        # The same row; the URL is minted anew (its expiry may have moved on).
        strip = lambda r: {**r, "RecordUrl": r["RecordUrl"].split("?")[0]}  # noqa: E731
        assert strip(one) == strip(row)
        check_row(rec, one, A)
    missing = "The specified RecordId does not exist."
    expect_error(lambda: get_file(client, A, "no-such-record"), 404, "InvalidRecordId.NotFound", missing)
    # A row of another stream is not this stream's.
    expect_error(lambda: get_file(client, C, rows[0]["RecordId"]), 404, "InvalidRecordId.NotFound", missing)
    expect_error(lambda: get_file(client, A, "x" * 200), 404, "InvalidRecordId.NotFound", missing)


def test_record_content_one_entry_per_session_and_format(rec):
    client = rec.client
    resp = content(client, A, rec.t0 - 60, rec.t1 + 60)
    assert_ok(resp)
    infos = resp.body.to_map()["RecordContentInfoList"]["RecordContentInfo"]
    assert len(infos) == 6, infos  # 2 sessions x 3 formats
    for info in infos:
        assert (info["OssBucket"], info["OssEndpoint"], info["OssObjectPrefix"]) == (BUCKET, "", OBJECT_PREFIX)
        assert 9.5 <= info["Duration"] <= 10.6, info
        assert ALIBABA_TIME.match(info["StartTime"]) and ALIBABA_TIME.match(info["EndTime"])
    starts = sorted(from_utc(i["StartTime"]) for i in infos)
    assert sum(s < rec.split for s in starts) == 3
    assert starts == [from_utc(i["StartTime"]) for i in infos], "ordered by start time"
    # The second session alone.
    second = content(client, A, rec.split, rec.t1 + 60).body.to_map()["RecordContentInfoList"]["RecordContentInfo"]
    assert len(second) == 3 and all(from_utc(i["StartTime"]) >= rec.split for i in second)
    assert second == infos[3:]
    # A range inside the first file of session 1 still answers the whole recordings.
    start = from_utc(infos[0]["StartTime"])
    part = content(client, A, start + 2, start + 3).body.to_map()["RecordContentInfoList"]["RecordContentInfo"]
    assert part == infos[:3]
    # Nothing in an empty range; the model still parses.
    body = content(client, A, rec.t0 - 3600, rec.t0 - 1800).body
    assert body.record_content_info_list.record_content_info == []
    # B: the API config's bucket, endpoint and (default) prefix.
    [info] = content(client, B, rec.t0 - 60, rec.t1 + 60, domain=B_DOMAIN).body.to_map()[
        "RecordContentInfoList"]["RecordContentInfo"]
    assert (info["OssBucket"], info["OssEndpoint"], info["OssObjectPrefix"]) == (B_BUCKET, B_ENDPOINT, B_PREFIX)


def test_rows_of_an_api_config_name_its_bucket_and_endpoint(rec):
    rows = [r for r in rec.rows(B, domain=B_DOMAIN) if r["OssObject"].startswith("record/")]
    assert len(rows) == 1, rows
    [row] = rows
    check_row(rec, row, B, domain=B_DOMAIN, bucket=B_BUCKET, endpoint=B_ENDPOINT)
    assert row["Format"] == "cmaf" and 9.5 <= row["Duration"] <= 10.6, row
    assert re.search(r"/\d{4}-\d\d-\d\d-\d\d:\d\d:\d\d to \d{4}-[-\d]+:\d\d:\d\d\.cmaf\.m3u8$", row["OssObject"]), row
    # Colons and spaces travel percent-encoded, in the URL and in the signed playlist.
    assert "%3A" in row["RecordUrl"] and "%20to%20" in row["RecordUrl"], row
    text = fetch(row["RecordUrl"]).body.decode()
    assert all(u.startswith("../../../live/cam/seg%20") for u in playlist_uris(text)), text
    assert decode_errors(row["RecordUrl"]) == ""


# ---------------------------------------------------------------------------------------------
# CreateLiveStreamRecordIndexFiles


def segments_of(rec: Recorded, stream: str, fmt: str, bucket: str = BUCKET, domain: str = DOMAIN) -> list[str]:
    """Object names of the segments of the stream's recorded playlists of `fmt`, in time order."""
    out = []
    rows = sorted((r for r in rec.rows(stream, domain=domain)
                   if r["Format"] == fmt and r["OssObject"].startswith("record/")), key=lambda r: r["StartTime"])
    for row in rows:
        text = (rec.bucket(bucket) / row["OssObject"]).read_text()
        out += [resolve(row["OssObject"], u) for u in playlist_uris(text) if not u.endswith("_init.mp4")]
    return out


def resolve(playlist: str, uri: str) -> str:
    return urllib.parse.urljoin("http://x/" + playlist, uri)[len("http://x/"):]


def test_create_index_over_ts_segments(rec):
    client = rec.client
    ts = segments_of(rec, D, "m3u8")
    assert len(ts) >= 5, ts
    obj = "made/d/all.m3u8"
    resp = create(client, D, rec.t0 - 60, rec.t1 + 60, obj, endpoint="oss-cn-beijing.aliyuncs.com")
    assert_ok(resp)
    info = resp.body.to_map()["RecordInfo"]
    assert "Format" not in info  # the SDK's RecordInfo has none
    assert (info["OssBucket"], info["OssEndpoint"], info["OssObject"]) == (BUCKET, "oss-cn-beijing.aliyuncs.com", obj)
    assert (info["DomainName"], info["AppName"], info["StreamName"]) == (DOMAIN, APP, D)
    assert (info["Width"], info["Height"]) == (320, 240)
    assert 9.5 <= info["Duration"] <= 10.6, info
    model = resp.body.record_info
    assert model.record_id == info["RecordId"] and model.record_url == info["RecordUrl"]
    # Stored under the OssObject exactly as given, over every TS segment of the range.
    path = rec.bucket() / obj
    text = path.read_text()
    assert [resolve(obj, u) for u in playlist_uris(text)] == ts
    assert "#EXT-X-MAP" not in text and text.rstrip().endswith("#EXT-X-ENDLIST")
    assert text.count("#EXT-X-DISCONTINUITY") == FILES_PER_SESSION - 1  # between the two files
    assert decode_errors(str(path)) == ""
    # Its row: format m3u8, found by id and in the listing.
    row = get_file(client, D, info["RecordId"]).body.to_map()["RecordIndexInfo"]
    assert row["Format"] == "m3u8" and row["OssObject"] == obj
    assert info["RecordId"] in [r["RecordId"] for r in rec.rows(D)]
    # Readable through its RecordUrl: a playlist of signed segment URLs that ffmpeg decodes.
    r = fetch(info["RecordUrl"])
    assert r.status == 200 and r.headers["content-type"] == "application/vnd.apple.mpegurl"
    uris = playlist_uris(r.body.decode())
    assert len(uris) == len(ts) and all(SIGNED.search(u) for u in uris)
    assert decode_errors(info["RecordUrl"]) == ""


def test_create_index_over_part_of_a_range_and_overwrite(rec):
    client = rec.client
    ts = segments_of(rec, D, "m3u8")
    rows = sorted((r for r in rec.rows(D) if r["Format"] == "m3u8" and r["OssObject"].startswith("record/")),
                  key=lambda r: r["StartTime"])
    first, last = rows[0], rows[-1]
    obj = "made/d/part.m3u8"
    # The range of the first file only: its segments, none of the second file's.
    end = from_utc(last["StartTime"])
    one = create(client, D, from_utc(first["StartTime"]), end, obj).body.to_map()["RecordInfo"]
    text = (rec.bucket() / obj).read_text()
    part = [resolve(obj, u) for u in playlist_uris(text)]
    assert part and part == ts[: len(part)] and len(part) < len(ts), (part, ts)
    assert "#EXT-X-DISCONTINUITY" not in text
    # The same OssObject again, over everything: the object and its row are replaced.
    two = create(client, D, rec.t0 - 60, rec.t1 + 60, obj, end_time_included=True).body.to_map()["RecordInfo"]
    assert two["RecordId"] != one["RecordId"]
    assert [resolve(obj, u) for u in playlist_uris((rec.bucket() / obj).read_text())] == ts
    expect_error(lambda: get_file(client, D, one["RecordId"]), 404, "InvalidRecordId.NotFound")
    assert [r["RecordId"] for r in rec.rows(D) if r["OssObject"] == obj] == [two["RecordId"]]
    assert decode_errors(two["RecordUrl"]) == ""
    # A recording's own file is never overwritten.
    expect_error(lambda: create(client, D, rec.t0 - 60, rec.t1 + 60, first["OssObject"]), 400,
                 "InvalidOssObject.Malformed", "Specified OssObject is malformed.")
    assert (rec.bucket() / first["OssObject"]).read_text() != (rec.bucket() / obj).read_text()


def test_create_index_over_cmaf_only_is_cmaf(rec):
    client = rec.client
    m4s = segments_of(rec, B, "cmaf", bucket=B_BUCKET, domain=B_DOMAIN)
    assert len(m4s) >= 2, m4s
    obj = "made/b/cmaf-index.m3u8"
    resp = create(client, B, rec.t0 - 60, rec.t1 + 60, obj, domain=B_DOMAIN, bucket=B_BUCKET, endpoint=B_ENDPOINT)
    assert_ok(resp)
    info = resp.body.to_map()["RecordInfo"]
    text = (rec.bucket(B_BUCKET) / obj).read_text()
    uris = [resolve(obj, u) for u in playlist_uris(text)]
    assert uris[0].endswith("_init.mp4") and "#EXT-X-MAP:URI=" in text
    assert uris[1:] == m4s
    row = get_file(client, B, info["RecordId"], domain=B_DOMAIN).body.to_map()["RecordIndexInfo"]
    assert (row["Format"], row["OssBucket"], row["OssEndpoint"]) == ("cmaf", B_BUCKET, B_ENDPOINT)
    assert decode_errors(str(rec.bucket(B_BUCKET) / obj)) == ""
    assert decode_errors(info["RecordUrl"]) == ""


def test_create_index_errors_of_stream_and_range(rec):
    client = rec.client
    expect_error(lambda: create(client, "never", rec.t0 - 60, rec.t1 + 60, "made/never.m3u8"), 400,
                 "InvalidStream.NotFound", "Speicified stream does not exist.")
    expect_error(lambda: create(client, D, rec.t0 - 3600, rec.t0 - 1800, "made/empty.m3u8"), 400,
                 "NoRecordContent", "The record content between StartTime and EndTime is empty.")
    # An index in another bucket than its segments could not reach them.
    expect_error(lambda: create(client, D, rec.t0 - 60, rec.t1 + 60, "made/elsewhere.m3u8", bucket="other"), 400,
                 "InvalidConfig.Changed", "The oss bucket info between StartTime and EndTime has changed.")
    assert not (rec.server.bucket_dir("other") / "made/elsewhere.m3u8").exists()
    assert not (rec.bucket() / "made/never.m3u8").exists()
    assert not (rec.bucket() / "made/empty.m3u8").exists()


# ---------------------------------------------------------------------------------------------
# DeleteLiveStreamRecordIndexFiles


def test_delete_index_files(rec):
    client = rec.client
    rows = rec.rows(C)
    by = {f: [r for r in rows if r["Format"] == f] for f in EXTENSIONS}
    bucket = rec.bucket()
    # RemoveFile=false: the row goes, the file stays.
    keep = by["mp4"][0]
    resp = delete(client, C, [keep["RecordId"]], False)
    assert_ok(resp)
    body = resp.body.to_map()
    assert (body["Code"], body["Message"]) == ("OK", "OK")
    assert body["RecordDeleteInfoList"]["RecordDeleteInfo"] == [{"Message": "OK", "RecordId": keep["RecordId"]}]
    assert (bucket / keep["OssObject"]).is_file()
    expect_error(lambda: get_file(client, C, keep["RecordId"]), 404, "InvalidRecordId.NotFound")
    # RemoveFile=true: playlists with their segments (and init segment), an MP4; unknown ids
    # and ids of other streams are FileNotFound.
    gone = [by["m3u8"][0], by["cmaf"][0], by["mp4"][1]]
    objects = []
    for row in gone:
        objects.append(row["OssObject"])
        if row["Format"] != "mp4":
            text = (bucket / row["OssObject"]).read_text()
            objects += [resolve(row["OssObject"], u) for u in playlist_uris(text)]
    assert any(o.endswith(".ts") for o in objects) and any(o.endswith(".m4s") for o in objects)
    assert any(o.endswith("_init.mp4") for o in objects)
    other = rec.rows(A)[0]["RecordId"]
    ids = [r["RecordId"] for r in gone] + ["no-such-record", other, keep["RecordId"]]
    resp = delete(client, C, ids, True)
    assert_ok(resp)
    infos = resp.body.record_delete_info_list.record_delete_info
    assert [(i.record_id, i.message) for i in infos] == [(i, "OK") for i in ids[:3]] + [
        (i, "FileNotFound") for i in ids[3:]]
    for o in objects:
        assert not (bucket / o).exists(), o
    # What was not deleted is still there.
    left = rec.rows(C)
    assert sorted(r["RecordId"] for r in left) == sorted(
        r["RecordId"] for r in rows if r["RecordId"] not in {keep["RecordId"], *ids[:3]})
    for row in left:
        assert (bucket / row["OssObject"]).is_file()
        if row["Format"] != "mp4":
            for u in playlist_uris((bucket / row["OssObject"]).read_text()):
                assert (bucket / resolve(row["OssObject"], u)).is_file()
    assert get_file(client, A, other).body.record_index_info.record_id == other


# ---------------------------------------------------------------------------------------------
# Parameter errors


def expect_case(case, call, status: int, code: str, message: str) -> None:
    """`expect_error`, naming the case when it fails."""
    try:
        expect_error(call, status, code, message)
    except BaseException as e:
        raise AssertionError(f"case {case}: {e}") from e


def test_parameter_errors(rec):
    client = rec.client
    s, e = rec.t0 - 60, rec.t1 + 60
    good = {"domain_name": DOMAIN, "app_name": APP, "stream_name": A, "start_time": utc(s), "end_time": utc(e)}
    malformed_start = (400, "InvalidStartTime.Malformed", "Specified StartTime is malformed.")
    malformed_end = (400, "InvalidEndTime.Malformed", "Specified EndTime is malformed.")
    mismatch = (400, "InvalidEndTime.Mismatch", MISMATCH)

    def invalid(name):
        return (400, "InvalidParameter", f'The specified value of parameter "{name}" is not valid.')

    def missing(name):
        return (400, f"Missing{name}", f"{name} is mandatory for this action.")

    time_cases = [
        ({"start_time": "2026-12-01 00:00:00"}, malformed_start),
        ({"start_time": "2026-12-01T00:00:00+08:00"}, malformed_start),
        ({"end_time": "yesterday"}, malformed_end),
        ({"end_time": "2026-02-30T00:00:00Z"}, malformed_end),
        ({"start_time": utc(e), "end_time": utc(s)}, mismatch),
        ({"end_time": utc(s)}, mismatch),
        ({"start_time": utc(e - 4 * 86400 - 1)}, mismatch),
        ({"start_time": None}, missing("StartTime")),
        ({"end_time": None}, missing("EndTime")),
        ({"domain_name": None}, missing("DomainName")),
        ({"app_name": None}, missing("AppName")),
        ({"stream_name": None}, missing("StreamName")),
        ({"stream_name": "*"}, invalid("StreamName")),
        ({"app_name": "a/b"}, invalid("AppName")),
        ({"domain_name": "bad..domain"}, invalid("DomainName")),
    ]
    # Exactly four days is allowed.
    assert_ok(client.describe_live_stream_record_index_files(m.DescribeLiveStreamRecordIndexFilesRequest(
        **{**good, "start_time": utc(e - 4 * 86400)})))
    for change, (status, code, message) in time_cases:
        fields = {**good, **change}
        expect_case(change, lambda: client.describe_live_stream_record_index_files(
            m.DescribeLiveStreamRecordIndexFilesRequest(**fields)), status, code, message)
        expect_case(change, lambda: client.describe_live_stream_record_content(
            m.DescribeLiveStreamRecordContentRequest(**fields)), status, code, message)
        expect_case(change, lambda: client.create_live_stream_record_index_files(
            m.CreateLiveStreamRecordIndexFilesRequest(**fields, oss_bucket=BUCKET, oss_endpoint="e",
                                                      oss_object="made/x.m3u8")), status, code, message)
    paging_cases = [
        ({"page_size": 4}, invalid("PageSize")),
        ({"page_size": 31}, invalid("PageSize")),
        ({"page_num": 0}, invalid("PageNum")),
        ({"order": "newest"}, invalid("Order")),
    ]
    for change, (status, code, message) in paging_cases:
        fields = {**good, **change}
        expect_case(change, lambda: client.describe_live_stream_record_index_files(
            m.DescribeLiveStreamRecordIndexFilesRequest(**fields)), status, code, message)
    for size in (5, 30):
        assert_ok(client.describe_live_stream_record_index_files(
            m.DescribeLiveStreamRecordIndexFilesRequest(**good, page_size=size)))

    store = {"oss_bucket": BUCKET, "oss_endpoint": "oss-cn-beijing.aliyuncs.com", "oss_object": "made/x.m3u8"}
    bad_bucket = (400, "InvalidOssBucket.Malformed", "Specified OssBucket is malformed.")
    bad_object = (400, "InvalidOssObject.Malformed", "Specified OssObject is malformed.")
    create_cases = [
        ({"oss_bucket": None}, missing("OssBucket")),
        ({"oss_endpoint": None}, missing("OssEndpoint")),
        ({"oss_object": None}, missing("OssObject")),
        ({"oss_bucket": "../x"}, bad_bucket),
        ({"oss_bucket": "a/b"}, bad_bucket),
        ({"oss_bucket": ".spool"}, bad_bucket),
        ({"oss_object": "../x.m3u8"}, bad_object),
        ({"oss_object": "/abs.m3u8"}, bad_object),
        ({"oss_object": "a//b.m3u8"}, bad_object),
        ({"oss_object": "a/./b.m3u8"}, bad_object),
        ({"oss_object": ".spool/x.m3u8"}, bad_object),
        ({"oss_object": "made/.hidden.m3u8"}, bad_object),
        ({"oss_object": "made/x.mp4"}, bad_object),
        ({"oss_object": "made/x"}, bad_object),
    ]
    for change, (status, code, message) in create_cases:
        fields = {**good, **store, **change}
        expect_case(change, lambda: client.create_live_stream_record_index_files(
            m.CreateLiveStreamRecordIndexFilesRequest(**fields)), status, code, message)
    assert not (rec.bucket() / "made/x.m3u8").exists()
    assert not (rec.bucket() / ".spool/x.m3u8").exists()

    one = {"domain_name": DOMAIN, "app_name": APP, "stream_name": A}
    expect_error(lambda: client.describe_live_stream_record_index_file(
        m.DescribeLiveStreamRecordIndexFileRequest(**one)), *missing("RecordId"))
    for change, expected in (({"domain_name": None}, missing("DomainName")), ({"stream_name": None},
                                                                             missing("StreamName"))):
        expect_error(lambda: client.describe_live_stream_record_index_file(
            m.DescribeLiveStreamRecordIndexFileRequest(**{**one, **change}, record_id="x")), *expected)
    expect_error(lambda: delete(client, A, [], True), *missing("RecordId"))
    expect_error(lambda: delete(client, A, ["x"], None), *missing("RemoveFile"))
    expect_error(lambda: delete(client, A, [f"x{i}" for i in range(21)], False), *invalid("RecordId"))
    expect_error(lambda: client.delete_live_stream_record_index_files(m.DeleteLiveStreamRecordIndexFilesRequest(
        app_name=APP, stream_name=A, record_id=["x"], remove_file=True)), *missing("DomainName"))


# ---------------------------------------------------------------------------------------------
# The older SDK


def raw_response(client, req):
    """(status, headers, body) as they came: the older SDK's only such call (deprecated)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return client.get_response(req)


def test_index_actions_through_the_older_sdk(rec):
    client = rec.server.legacy_client()
    req = rec.server.legacy_request(DescribeLiveStreamRecordIndexFilesRequest)
    req.set_DomainName(DOMAIN)
    req.set_AppName(APP)
    req.set_StreamName(A)
    req.set_StartTime(utc(rec.t0 - 60))
    req.set_EndTime(utc(rec.t1 + 60))
    req.set_PageSize(5)
    req.set_Order("desc")
    body = json.loads(client.do_action_with_exception(req))
    assert UUID_UPPER.match(body["RequestId"])
    assert (body["TotalNum"], body["TotalPage"], body["PageSize"], body["Order"]) == (12, 3, 5, "desc")
    desc = [r["RecordId"] for r in body["RecordIndexInfoList"]["RecordIndexInfo"]]
    assert desc == [r["RecordId"] for r in rec.rows(A)][::-1][:5]

    # XML: the list's wrapper and items as elements.
    req.set_accept_format("XML")
    status, headers, raw = raw_response(client, req)
    assert status == 200 and header(headers, "content-type") == "text/xml;charset=utf-8"
    root = ET.fromstring(raw)
    assert root.tag == "DescribeLiveStreamRecordIndexFilesResponse"
    assert [e.findtext("RecordId") for e in root.findall("RecordIndexInfoList/RecordIndexInfo")] == desc
    assert root.findtext("TotalNum") == "12"

    req = rec.server.legacy_request(DescribeLiveStreamRecordIndexFileRequest)
    req.set_DomainName(DOMAIN)
    req.set_AppName(APP)
    req.set_StreamName(A)
    req.set_RecordId(desc[0])
    body = json.loads(client.do_action_with_exception(req))
    assert body["RecordIndexInfo"]["RecordId"] == desc[0]
    assert (body["RecordIndexInfo"]["Width"], body["RecordIndexInfo"]["Height"]) == (320, 240)

    req = rec.server.legacy_request(DescribeLiveStreamRecordIndexFilesRequest)
    req.set_DomainName(DOMAIN)
    req.set_AppName(APP)
    req.set_StreamName(A)
    req.set_StartTime(utc(rec.t1 + 60))
    req.set_EndTime(utc(rec.t0 - 60))
    expect_legacy_error(lambda: client.do_action_with_exception(req), 400, "InvalidEndTime.Mismatch", MISMATCH)


# ---------------------------------------------------------------------------------------------
# Playback: /vod/{bucket}/{object}?Expires=&Signature=


def row_of(rec: Recorded, fmt: str) -> dict:
    return next(r for r in rec.rows(A) if r["Format"] == fmt)


def assert_cors(r: Response) -> None:
    assert r.headers.get("access-control-allow-origin") == "*", r.headers
    exposed = {h.strip().lower() for h in r.headers.get("access-control-expose-headers", "").split(",")}
    assert {"content-length", "content-range", "accept-ranges"} <= exposed, r.headers


def test_mp4_record_url_whole_file_and_byte_ranges(rec):
    row = row_of(rec, "mp4")
    data = (rec.bucket() / row["OssObject"]).read_bytes()
    url = row["RecordUrl"]
    r = fetch(url)
    assert r.status == 200 and r.body == data
    assert r.headers["content-type"] == "video/mp4" and r.headers["accept-ranges"] == "bytes"
    assert int(r.headers["content-length"]) == len(data)
    assert_cors(r)
    r = fetch(url, headers={"Range": "bytes=100-199"})
    assert r.status == 206 and r.body == data[100:200]
    assert r.headers["content-range"] == f"bytes 100-199/{len(data)}"
    assert int(r.headers["content-length"]) == 100
    assert_cors(r)
    r = fetch(url, headers={"Range": f"bytes={len(data) - 10}-"})
    assert r.status == 206 and r.body == data[-10:]
    assert r.headers["content-range"] == f"bytes {len(data) - 10}-{len(data) - 1}/{len(data)}"
    r = fetch(url, headers={"Range": "bytes=-20"})
    assert r.status == 206 and r.body == data[-20:]
    r = fetch(url, headers={"Range": f"bytes={len(data)}-"})
    assert r.status == 416 and r.headers["content-range"] == f"bytes */{len(data)}"
    r = fetch(url, headers={"Range": "bytes=9-3"})
    assert r.status == 200 and r.body == data, "a malformed Range is ignored"
    r = fetch(url, method="HEAD")
    assert r.status == 200 and r.body == b"" and int(r.headers["content-length"]) == len(data)
    # A preflight for a Range request from another origin.
    r = fetch(url, method="OPTIONS", headers={"Origin": "http://example.org", "Access-Control-Request-Method": "GET",
                                              "Access-Control-Request-Headers": "range"})
    assert r.status in (200, 204), r
    assert r.headers.get("access-control-allow-origin") == "*"
    assert "GET" in r.headers.get("access-control-allow-methods", "")
    assert "range" in r.headers.get("access-control-allow-headers", "").lower()


def sign(secret: bytes, bucket: str, obj: str, expires: int) -> str:
    return hmac.new(secret, f"{expires}\n{bucket}\n{obj}".encode(), hashlib.sha256).hexdigest()


def test_record_url_refusals(rec):
    row = row_of(rec, "mp4")
    other = next(r for r in rec.rows(A) if r["Format"] == "mp4" and r["RecordId"] != row["RecordId"])
    url = row["RecordUrl"]
    assert fetch(url).status == 200
    path, query = url.split("?", 1)
    expires, signature = SIGNED.search(url).groups()
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    refused = [
        f"{path}?Expires={expires}&Signature={flipped}",  # tampered signature
        f"{other['RecordUrl'].split('?')[0]}?{query}",  # another file, this file's signature
        f"{path}?Expires={int(expires) + 1}&Signature={signature}",  # a later expiry
        path,  # unsigned
        f"{path}?Expires={expires}",
    ]
    for bad in refused:
        r = fetch(bad)
        assert r.status == 403, (bad, r)
        assert_cors(r)
    # Expired: a URL signed with the server's own secret, but past its time.
    secret = rec.vod_secret()
    base = url.split("/vod/")[0]
    obj = urllib.parse.quote(row["OssObject"], safe="/-_.~")
    assert sign(secret, BUCKET, row["OssObject"], int(expires)) == signature, "the test signs as the server"
    now = int(time.time())
    fresh = f"{base}/vod/{BUCKET}/{obj}?Expires={now + 600}&Signature={sign(secret, BUCKET, row['OssObject'], now + 600)}"
    assert fetch(fresh).status == 200
    stale = f"{base}/vod/{BUCKET}/{obj}?Expires={now - 1}&Signature={sign(secret, BUCKET, row['OssObject'], now - 1)}"
    r = fetch(stale)
    assert r.status == 403 and b"expired" in r.body, r
    # A path that leaves the bucket, signed or not, is no recording.
    sneaky = f"{base}/vod/{BUCKET}/../liverec.db?Expires={now + 600}&Signature={sign(secret, BUCKET, '../liverec.db', now + 600)}"
    assert fetch(sneaky).status in (403, 404)


@pytest.mark.parametrize("fmt", ["m3u8", "cmaf"])
def test_playlist_record_urls_sign_their_segments_and_decode(rec, fmt):
    row = row_of(rec, fmt)
    bucket = rec.bucket()
    stored = (bucket / row["OssObject"]).read_text()
    r = fetch(row["RecordUrl"])
    assert r.status == 200 and r.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert_cors(r)
    text = r.body.decode()
    uris = playlist_uris(text)
    assert len(uris) == len(playlist_uris(stored)) and uris, text
    expires = SIGNED.search(row["RecordUrl"]).group(1)
    for uri, plain in zip(uris, playlist_uris(stored)):
        assert SIGNED.search(uri) and uri.split("?")[0] == urllib.parse.quote(plain, safe="/-_.~"), (uri, plain)
        assert SIGNED.search(uri).group(1) == expires, "segments expire with their playlist"
        seg = fetch(urllib.parse.urljoin(row["RecordUrl"], uri))
        assert seg.status == 200, (uri, seg.status)
        assert seg.body == (bucket / resolve(row["OssObject"], plain)).read_bytes()
        assert_cors(seg)
        assert seg.headers["content-type"] == {"ts": "video/mp2t", "m4s": "video/iso.segment",
                                               "mp4": "video/mp4"}[plain.rsplit(".", 1)[1]]
    if fmt == "cmaf":
        assert text.count("#EXT-X-MAP:URI=") == 1
    # Everything but the URIs is the stored playlist.
    strip = lambda t: [line for line in t.splitlines() if line.startswith("#") and "URI=" not in line]  # noqa: E731
    assert strip(text) == strip(stored)
    assert decode_errors(row["RecordUrl"]) == ""
    # A segment URL without its signature is refused.
    assert fetch(urllib.parse.urljoin(row["RecordUrl"], uris[-1].split("?")[0])).status == 403
