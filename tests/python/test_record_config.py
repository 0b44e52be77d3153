"""Record configs through the current SDK (alibabacloud-live20161101): Add, Update, Delete and
DescribeLiveRecordConfig, every field round-tripping, and their documented errors."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from alibabacloud_live20161101 import models as live_models

from liverec_support import (
    ALIBABA_TIME,
    add_config,
    assert_ok,
    describe_configs,
    expect_error,
)

DOMAIN = "cfg.example.com"
OSS_ENDPOINT = "oss-cn-shanghai.aliyuncs.com"
# DESIGN.md, "Object names": the defaults of a format given without prefixes.
DEFAULT_PREFIX = "record/{DomainName}/{AppName}/{StreamName}/{EscapedStartTime}_{EscapedEndTime}"
DEFAULT_SLICE_PREFIX = "record/{DomainName}/{AppName}/{StreamName}/{UnixTimestamp}_{Sequence}"
CONFIG_NOT_FOUND = "Config does not exist."


def utc(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def only_record(client, domain=DOMAIN, **filters) -> dict:
    resp = describe_configs(client, domain, **filters)
    assert_ok(resp)
    records = resp.body.live_app_record_list.live_app_record
    assert resp.body.total_num == 1 and len(records) == 1, resp.body.to_map()
    return records[0].to_map()


def formats_by_name(record: dict, key: str = "RecordFormatList") -> dict[str, dict]:
    return {f["Format"]: f for f in record[key]["RecordFormat"]}


def assert_formats(record: dict, sent: list[dict], key: str = "RecordFormatList") -> None:
    """The described formats are the ones sent, each with every field sent (fields the server
    adds, like defaults, are not judged here)."""
    got = formats_by_name(record, key)
    assert sorted(got) == sorted(f["Format"] for f in sent), record[key]
    for f in sent:
        shown = {k: got[f["Format"]].get(k) for k in f}
        assert shown == f, f"{key}: sent {f}, described {got[f['Format']]}"


def test_add_then_describe_round_trips_every_field(server):
    client = server.client()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    start, end = utc(now + timedelta(hours=1)), utc(now + timedelta(days=3))
    formats = [
        {"Format": "mp4", "OssObjectPrefix": "mp4/{AppName}/{StreamName}/{EscapedStartTime}_{EscapedEndTime}",
         "CycleDuration": 3600},
        {"Format": "flv", "OssObjectPrefix": "flv/{AppName}/{StreamName}/{StartTime}_{EndTime}",
         "CycleDuration": 1800},
        {"Format": "m3u8", "OssObjectPrefix": "hls/{AppName}/{StreamName}/{EscapedStartTime}_{EscapedEndTime}",
         "SliceOssObjectPrefix": "hls/{AppName}/{StreamName}/{UnixTimestamp}_{Sequence}",
         "CycleDuration": 7200, "SliceDuration": 10},
        {"Format": "cmaf", "OssObjectPrefix": "cmaf/{AppName}/{StreamName}/{EscapedStartTime}_{EscapedEndTime}",
         "SliceOssObjectPrefix": "cmaf/{AppName}/{StreamName}/{UnixTimestamp}_{Sequence}",
         "CycleDuration": 900, "SliceDuration": 6},
    ]
    transcode = [{"Format": "mp4", "OssObjectPrefix": "tc/{AppName}/{StreamName}/{EscapedStartTime}_{EscapedEndTime}",
                  "CycleDuration": 3600}]
    before = datetime.now(timezone.utc).replace(microsecond=0)
    resp = add_config(
        client, DOMAIN, "live", formats, stream="s1", bucket="rec-bucket", endpoint=OSS_ENDPOINT,
        on_demand=7, delay_time=60, start_time=start, end_time=end,
        transcode_templates=["tpl-720p", "tpl-480p"],
        transcode_record_format=[
            live_models.AddLiveAppRecordConfigRequestTranscodeRecordFormat().from_map(f) for f in transcode
        ],
    )
    assert_ok(resp)

    resp = describe_configs(client, DOMAIN)
    assert_ok(resp)
    body = resp.body
    assert (body.total_num, body.total_page, body.page_num) == (1, 1, 1), body.to_map()
    assert isinstance(body.page_size, int) and body.page_size >= 1, body.to_map()
    record = body.live_app_record_list.live_app_record[0]
    # The SDK model only fills on_demond from the key `OnDemond` (sic), so this proves the name.
    assert record.on_demond == 7, record.to_map()
    got = record.to_map()
    assert got["DomainName"] == DOMAIN
    assert got["AppName"] == "live"
    assert got["StreamName"] == "s1"
    assert got["OssBucket"] == "rec-bucket"
    assert got["OssEndpoint"] == OSS_ENDPOINT
    assert got["DelayTime"] == 60 and isinstance(got["DelayTime"], int)
    assert isinstance(got["OnDemond"], int)
    assert (got["StartTime"], got["EndTime"]) == (start, end)
    assert ALIBABA_TIME.match(got["CreateTime"]), got["CreateTime"]
    created = datetime.strptime(got["CreateTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert before - timedelta(seconds=2) <= created <= datetime.now(timezone.utc) + timedelta(seconds=2)
    assert_formats(got, formats)
    assert got["TranscodeTemplates"] == {"Templates": ["tpl-720p", "tpl-480p"]}
    assert_formats(got, transcode, key="TranscodeRecordFormatList")


def test_defaults_of_a_minimal_config(server):
    client = server.client()
    # A segmented format must name its slices (API.md); everything else may be left out.
    slices = "hls/{AppName}/{StreamName}/{UnixTimestamp}_{Sequence}"
    assert_ok(add_config(client, DOMAIN, "live", [{"Format": "mp4"}, {"Format": "m3u8", "SliceOssObjectPrefix": slices}]))
    got = only_record(client)
    assert got["OnDemond"] == 0, "OnDemand defaults to automatic"
    assert got["DelayTime"] == 180, "Alibaba's default DelayTime"
    assert got["AppName"] == "live"
    fmts = formats_by_name(got)
    assert fmts["mp4"]["CycleDuration"] == 3600, fmts
    assert fmts["mp4"]["OssObjectPrefix"] == DEFAULT_PREFIX, fmts
    assert fmts["m3u8"]["CycleDuration"] == 21600, fmts
    assert fmts["m3u8"]["SliceDuration"] == 30, fmts
    assert fmts["m3u8"]["OssObjectPrefix"] == DEFAULT_PREFIX, fmts
    assert fmts["m3u8"]["SliceOssObjectPrefix"] == slices, fmts


def test_update_replaces_the_given_fields_and_keeps_each_format_prefix(server):
    client = server.client()
    hls_prefix = "hls/{AppName}/{StreamName}/{EscapedStartTime}_{EscapedEndTime}"
    hls_slices = "hls/{AppName}/{StreamName}/{UnixTimestamp}_{Sequence}"
    assert_ok(add_config(
        client, DOMAIN, "live",
        [{"Format": "m3u8", "OssObjectPrefix": hls_prefix, "SliceOssObjectPrefix": hls_slices,
          "CycleDuration": 7200, "SliceDuration": 10},
         {"Format": "mp4", "OssObjectPrefix": "mp4/{AppName}/{EscapedStartTime}_{EscapedEndTime}"}],
        bucket="keep-me", on_demand=0, delay_time=60,
    ))
    resp = client.update_live_app_record_config(live_models.UpdateLiveAppRecordConfigRequest(
        domain_name=DOMAIN, app_name="live", oss_endpoint=OSS_ENDPOINT, on_demand=7, delay_time=300,
        record_format=[
            live_models.UpdateLiveAppRecordConfigRequestRecordFormat(format="m3u8", cycle_duration=3600, slice_duration=5),
            live_models.UpdateLiveAppRecordConfigRequestRecordFormat(format="flv", cycle_duration=1800),
            live_models.UpdateLiveAppRecordConfigRequestRecordFormat(format="cmaf"),
        ],
    ))
    assert_ok(resp)
    got = only_record(client)
    assert (got["OnDemond"], got["DelayTime"]) == (7, 300)
    assert got["OssBucket"] == "keep-me", "Update has no OssBucket: the bucket stays"
    fmts = formats_by_name(got)
    assert set(fmts) == {"m3u8", "flv", "cmaf"}, "the new list replaces the old one"
    assert fmts["m3u8"] == {"Format": "m3u8", "OssObjectPrefix": hls_prefix, "SliceOssObjectPrefix": hls_slices,
                            "CycleDuration": 3600, "SliceDuration": 5}
    assert fmts["flv"]["CycleDuration"] == 1800
    assert fmts["flv"]["OssObjectPrefix"] == DEFAULT_PREFIX, "a new format gets the default prefix"
    assert fmts["cmaf"] == {"Format": "cmaf", "OssObjectPrefix": DEFAULT_PREFIX,
                            "SliceOssObjectPrefix": DEFAULT_SLICE_PREFIX, "CycleDuration": 21600,
                            "SliceDuration": 30}, fmts["cmaf"]


def test_delete_removes_only_that_config(server):
    client = server.client()
    assert_ok(add_config(client, DOMAIN, "live", [{"Format": "mp4"}]))
    assert_ok(add_config(client, DOMAIN, "other", [{"Format": "flv"}]))
    assert_ok(add_config(client, DOMAIN, "live", [{"Format": "flv"}], stream="s1"))
    assert describe_configs(client, DOMAIN).body.total_num == 3

    delete = live_models.DeleteLiveAppRecordConfigRequest(domain_name=DOMAIN, app_name="live")
    assert_ok(client.delete_live_app_record_config(delete))
    resp = describe_configs(client, DOMAIN)
    left = sorted((r.app_name, r.stream_name or "") for r in resp.body.live_app_record_list.live_app_record)
    assert left == [("live", "s1"), ("other", "")] or left == [("live", "s1"), ("other", "*")], left

    expect_error(lambda: client.delete_live_app_record_config(delete), 404, "InvalidConfig.NotFound", CONFIG_NOT_FOUND)
    expect_error(
        lambda: client.update_live_app_record_config(live_models.UpdateLiveAppRecordConfigRequest(
            domain_name=DOMAIN, app_name="live", oss_endpoint=OSS_ENDPOINT, delay_time=30)),
        404, "InvalidConfig.NotFound", CONFIG_NOT_FOUND,
    )
    assert_ok(client.delete_live_app_record_config(live_models.DeleteLiveAppRecordConfigRequest(
        domain_name=DOMAIN, app_name="live", stream_name="s1")))
    assert_ok(client.delete_live_app_record_config(live_models.DeleteLiveAppRecordConfigRequest(
        domain_name=DOMAIN, app_name="other")))
    resp = describe_configs(client, DOMAIN)
    assert resp.body.total_num == 0
    assert not (resp.body.live_app_record_list and resp.body.live_app_record_list.live_app_record)


def test_describe_filters_by_app_and_stream_and_pages(server):
    client = server.client()
    for app in ("a1", "a2", "a3", "a4", "a5"):
        assert_ok(add_config(client, DOMAIN, app, [{"Format": "mp4"}]))
    assert_ok(add_config(client, DOMAIN, "a1", [{"Format": "mp4"}], stream="s9"))
    assert_ok(add_config(client, "elsewhere.example.com", "a1", [{"Format": "mp4"}]))

    assert describe_configs(client, DOMAIN).body.total_num == 6
    by_app = describe_configs(client, DOMAIN, app_name="a1").body
    assert by_app.total_num == 2, by_app.to_map()
    assert {r.app_name for r in by_app.live_app_record_list.live_app_record} == {"a1"}
    by_stream = describe_configs(client, DOMAIN, app_name="a1", stream_name="s9").body
    assert [r.stream_name for r in by_stream.live_app_record_list.live_app_record] == ["s9"], by_stream.to_map()

    seen = []
    for page, count in ((1, 5), (2, 1)):  # PageSize is 5–30, as for the other Describe actions
        body = describe_configs(client, DOMAIN, page_num=page, page_size=5).body
        assert (body.total_num, body.total_page, body.page_num, body.page_size) == (6, 2, page, 5), body.to_map()
        records = body.live_app_record_list.live_app_record
        assert len(records) == count, body.to_map()
        seen += [(r.app_name, r.stream_name) for r in records]
    assert len(set(seen)) == 6, seen

    empty = describe_configs(client, "nothing.example.com").body
    assert empty.total_num == 0, empty.to_map()


def test_one_config_per_domain_app_stream(server):
    client = server.client()
    assert_ok(add_config(client, DOMAIN, "live", [{"Format": "mp4"}]))
    expect_error(lambda: add_config(client, DOMAIN, "live", [{"Format": "flv"}]),
                 400, "ConfigAlreadyExists", "Config has already exist.")
    # Another stream, another app, a wildcard app: each its own config.
    assert_ok(add_config(client, DOMAIN, "live", [{"Format": "mp4"}], stream="s1"))
    assert_ok(add_config(client, DOMAIN, "*", [{"Format": "mp4"}]))
    expect_error(lambda: add_config(client, DOMAIN, "live", [{"Format": "mp4"}], stream="s1"),
                 400, "ConfigAlreadyExists", "Config has already exist.")


def invalid(name: str) -> str:
    return f'The specified value of parameter "{name}" is not valid.'


BAD_ADDS = [
    # (id, add_config keyword overrides, status, code, message)
    ("delay-too-short", {"delay_time": 14}, 400, "InvalidParameter", invalid("DelayTime")),
    ("delay-too-long", {"delay_time": 21601}, 400, "InvalidParameter", invalid("DelayTime")),
    ("unknown-format", {"formats": [{"Format": "avi"}]}, 400, "InvalidFormat.Malformed",
     "Specified parameter Format is not valid."),
    ("prefix-without-times", {"formats": [{"Format": "mp4", "OssObjectPrefix": "rec/{AppName}/{StreamName}"}]},
     400, "InvalidOssObjectPrefix.Malformed", "Specified parameter OssObjectPrefix is not valid."),
    ("prefix-too-long", {"formats": [{"Format": "mp4",
                                      "OssObjectPrefix": "r" * 250 + "{EscapedStartTime}_{EscapedEndTime}"}]},
     400, "InvalidOssObjectPrefix.Malformed", "Specified parameter OssObjectPrefix is not valid."),
    ("slice-prefix-without-sequence", {"formats": [{"Format": "m3u8",
                                                    "SliceOssObjectPrefix": "hls/{AppName}/{UnixTimestamp}"}]},
     400, "InvalidSliceOssObjectPrefix.Malformed", "Specified parameter SliceOssObjectPrefix is not valid."),
    ("cycle-too-short", {"formats": [{"Format": "mp4", "CycleDuration": 299}]}, 400,
     "InvalidCycleDuration.Malformed", "Specified CycleDuration Format is not valid."),
    ("cycle-too-long", {"formats": [{"Format": "mp4", "CycleDuration": 21601}]}, 400,
     "InvalidCycleDuration.Malformed", "Specified CycleDuration Format is not valid."),
    ("bad-start-time", {"stream": "s1", "start_time": "2030-13-01 00:00:00", "end_time": "2030-01-02T00:00:00Z"},
     400, "InvalidStartTime.Malformed", "Specified StartTime is malformed."),
    ("bad-end-time", {"stream": "s1", "start_time": "2030-01-01T00:00:00Z", "end_time": "tomorrow"}, 400,
     "InvalidEndTime.Malformed", "Specified EndTime is malformed."),
    ("window-over-7-days", {"stream": "s1", "start_time": "2030-01-01T00:00:00Z", "end_time": "2030-01-08T00:00:01Z"},
     400, "InvalidEndTime.Mismatch", "Specified end time does not math the specified start time."),
    ("m3u8-without-slice-prefix", {"formats": [{"Format": "m3u8"}]}, 400, "MissingSliceOssObjectPrefix",
     "SliceOssObjectPrefix is mandatory for this action."),
    ("slice-too-long", {"formats": [{"Format": "cmaf", "SliceDuration": 31,
                                     "SliceOssObjectPrefix": "c/{UnixTimestamp}_{Sequence}"}]},
     400, "InvalidParameter", invalid("SliceDuration")),
    ("no-bucket", {"bucket": None}, 400, "MissingOssBucket", "OssBucket is mandatory for this action."),
    ("no-endpoint", {"endpoint": None}, 400, "MissingOssEndpoint", "OssEndpoint is mandatory for this action."),
    ("no-app", {"app": None}, 400, "MissingAppName", "AppName is mandatory for this action."),
    ("no-domain", {"domain": None}, 400, "MissingDomainName", "DomainName is mandatory for this action."),
    ("bad-on-demand", {"on_demand": 5}, 400, "InvalidParameter", invalid("OnDemand")),
]


@pytest.mark.parametrize("overrides,status,code,message", [b[1:] for b in BAD_ADDS], ids=[b[0] for b in BAD_ADDS])
def test_add_refuses_invalid_fields(server, overrides, status, code, message):
    client = server.client()
    fields = dict(overrides)
    domain = fields.pop("domain", DOMAIN)
    app = fields.pop("app", "live")
    formats = fields.pop("formats", [{"Format": "mp4"}])
    expect_error(lambda: add_config(client, domain, app, formats, **fields), status, code, message)
    assert describe_configs(client, DOMAIN).body.total_num == 0, "nothing stored"


def test_update_refuses_a_delay_out_of_range(server):
    client = server.client()
    assert_ok(add_config(client, DOMAIN, "live", [{"Format": "mp4"}], delay_time=60))
    for delay in (14, 21601):
        expect_error(
            lambda: client.update_live_app_record_config(live_models.UpdateLiveAppRecordConfigRequest(
                domain_name=DOMAIN, app_name="live", oss_endpoint=OSS_ENDPOINT, delay_time=delay)),
            400, "InvalidParameter", invalid("DelayTime"),
        )
    assert only_record(client)["DelayTime"] == 60, "a refused update changes nothing"


def test_configs_persist_across_restarts(server):
    client = server.client()
    assert_ok(add_config(client, DOMAIN, "live", [{"Format": "flv", "CycleDuration": 600}],
                         stream="s1", on_demand=7, delay_time=45))
    before = only_record(client)
    assert server.stop() == 0
    server.start()
    after = only_record(server.client())
    assert after == before
