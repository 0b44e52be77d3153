"""Pull configs through the current SDK: triggered ("lazy") pulls — SetLiveLazyPullStreamInfoConfig,
DescribeLiveLazyPullStreamConfig, DeleteLiveLazyPullStreamInfoConfig — and scheduled pulls —
AddLivePullStreamInfoConfig, UpdateLivePullStreamInfoConfig, DescribeLivePullStreamConfig,
DeleteLivePullStreamInfoConfig — with their errors. (Pulling itself, with nginx-rtmp as the
origin, is tested in crates/liverec/tests/pull.rs.)"""

from __future__ import annotations

import datetime

from alibabacloud_live20161101 import models as live_models

from liverec_support import assert_ok, expect_error

DOMAIN = "pull.example.com"


def utc(offset_secs: int) -> str:
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset_secs)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def lazy_configs(client, app=None):
    resp = client.describe_live_lazy_pull_stream_config(
        live_models.DescribeLiveLazyPullStreamConfigRequest(domain_name=DOMAIN, app_name=app))
    assert_ok(resp)
    listed = resp.body.live_lazy_pull_config_list
    return [(c.app_name, c.domain_name, c.pull_domain_name, c.pull_app_name, c.pull_protocol,
             c.transcode_lazy) for c in (listed.live_lazy_pull_config if listed else [])]


def test_lazy_pull_configs_are_set_listed_replaced_and_deleted(server):
    client = server.client()
    assert lazy_configs(client) == []
    assert_ok(client.set_live_lazy_pull_stream_info_config(
        live_models.SetLiveLazyPullStreamInfoConfigRequest(
            domain_name=DOMAIN, app_name="live", pull_domain_name="a.origin.example;b.origin.example:1936",
            pull_protocol="rtmp")))
    assert_ok(client.set_live_lazy_pull_stream_info_config(
        live_models.SetLiveLazyPullStreamInfoConfigRequest(
            domain_name=DOMAIN, app_name="ali_all_app", pull_domain_name="all.origin.example",
            pull_app_name="origin", pull_protocol="httpflv", transcode_lazy="yes")))
    assert lazy_configs(client) == [
        ("ali_all_app", DOMAIN, "all.origin.example", "origin", "httpflv", "yes"),
        ("live", DOMAIN, "a.origin.example;b.origin.example:1936", "", "rtmp", "no"),
    ]
    # Set again: replaced.
    assert_ok(client.set_live_lazy_pull_stream_info_config(
        live_models.SetLiveLazyPullStreamInfoConfigRequest(
            domain_name=DOMAIN, app_name="live", pull_domain_name="c.origin.example",
            pull_protocol="httpflv")))
    assert lazy_configs(client, "live") == [("live", DOMAIN, "c.origin.example", "", "httpflv", "no")]
    assert_ok(client.delete_live_lazy_pull_stream_info_config(
        live_models.DeleteLiveLazyPullStreamInfoConfigRequest(domain_name=DOMAIN, app_name="live")))
    assert [c[0] for c in lazy_configs(client)] == ["ali_all_app"]


def test_lazy_pull_errors(server):
    client = server.client()

    def set_(**kw):
        args = dict(domain_name=DOMAIN, app_name="live", pull_domain_name="o.example", pull_protocol="rtmp")
        args.update(kw)
        return lambda: client.set_live_lazy_pull_stream_info_config(
            live_models.SetLiveLazyPullStreamInfoConfigRequest(**args))

    # liverec does not pull HLS: said when the config is set.
    expect_error(set_(pull_protocol="hls"), 400, "InvalidParameter")
    expect_error(set_(pull_domain_name="bad host"), 400, "InvalidParameter")
    expect_error(set_(pull_domain_name="o.example:70000"), 400, "InvalidParameter")
    expect_error(set_(pull_domain_name=None), 400, "MissingPullDomainName")


def pull_configs(client):
    resp = client.describe_live_pull_stream_config(
        live_models.DescribeLivePullStreamConfigRequest(domain_name=DOMAIN))
    assert_ok(resp)
    listed = resp.body.live_app_record_list
    return listed.live_app_record if listed else []


def test_scheduled_pulls_are_added_updated_listed_and_deleted(server):
    client = server.client()

    def request(kind, stream, source, start, end):
        return kind(domain_name=DOMAIN, app_name="live", stream_name=stream, source_url=source,
                    start_time=start, end_time=end)

    # A window in the future: nothing is pulled yet.
    start, end = utc(3600), utc(7200)
    assert_ok(client.add_live_pull_stream_info_config(request(
        live_models.AddLivePullStreamInfoConfigRequest, "s", "rtmp://o.example/live/s", start, end)))
    [row] = pull_configs(client)
    assert (row.app_name, row.stream_name, row.source_url, row.source_using) == ("live", "s", "rtmp://o.example/live/s", "")
    assert (row.start_time, row.end_time) == (start, end)
    expect_error(lambda: client.add_live_pull_stream_info_config(request(
        live_models.AddLivePullStreamInfoConfigRequest, "s", "rtmp://o.example/live/s", start, end)),
        400, "ConfigAlreadyExists")
    assert_ok(client.update_live_pull_stream_info_config(request(
        live_models.UpdateLivePullStreamInfoConfigRequest, "s", "http://o.example:8080/live/s.flv",
        start, utc(7300))))
    [row] = pull_configs(client)
    assert row.source_url == "http://o.example:8080/live/s.flv"
    expect_error(lambda: client.update_live_pull_stream_info_config(request(
        live_models.UpdateLivePullStreamInfoConfigRequest, "nothing", "rtmp://o.example/live/s", start, end)),
        404, "InvalidConfig.NotFound")
    assert_ok(client.delete_live_pull_stream_info_config(live_models.DeleteLivePullStreamInfoConfigRequest(
        domain_name=DOMAIN, app_name="live", stream_name="s")))
    assert pull_configs(client) == []


def test_scheduled_pull_time_errors(server):
    client = server.client()

    def add(start, end, source="rtmp://o.example/live/s"):
        return lambda: client.add_live_pull_stream_info_config(live_models.AddLivePullStreamInfoConfigRequest(
            domain_name=DOMAIN, app_name="live", stream_name="t", source_url=source,
            start_time=start, end_time=end))

    expect_error(add("2030-01-01 00:00:00", utc(60)), 400, "InvalidStartTime.Malformed",
                 "Specified StartTime is malformed.")
    expect_error(add(utc(60), utc(30)), 400, "InvalidEndTime.Malformed", "Specified EndTime is malformed.")
    expect_error(add(utc(0), utc(8 * 86400)), 400, "InvalidEndTime.Malformed")
    expect_error(add(utc(-7200), utc(-3600)), 400, "InvalidEndTime.Malformed")
    expect_error(add(utc(0), utc(60), source="ftp://o.example/s"), 400, "InvalidParameter")
