"""Record callbacks through the SDKs: Add, Update, Delete and DescribeLiveRecordNotifyConfig (one
config per domain), DescribeLiveRecordNotifyRecords (the callbacks tried so far), their
documented errors, and the older SDK."""

from __future__ import annotations

import json
import threading
import time
import warnings
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from alibabacloud_live20161101 import models as live_models
from aliyunsdklive.request.v20161101.AddLiveRecordNotifyConfigRequest import AddLiveRecordNotifyConfigRequest
from aliyunsdklive.request.v20161101.DeleteLiveRecordNotifyConfigRequest import DeleteLiveRecordNotifyConfigRequest
from aliyunsdklive.request.v20161101.DescribeLiveRecordNotifyConfigRequest import (
    DescribeLiveRecordNotifyConfigRequest,
)
from aliyunsdklive.request.v20161101.DescribeLiveRecordNotifyRecordsRequest import (
    DescribeLiveRecordNotifyRecordsRequest,
)
from aliyunsdklive.request.v20161101.UpdateLiveRecordNotifyConfigRequest import UpdateLiveRecordNotifyConfigRequest

from liverec_support import UUID_UPPER, assert_ok, expect_error, expect_legacy_error

DOMAIN = "notify.example.com"
CONFIG_NOT_FOUND = "Config does not exist."
AUTH_KEY = "Abcdefgh12345678"


def utc(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def add(client, domain=DOMAIN, **fields):
    return client.add_live_record_notify_config(
        live_models.AddLiveRecordNotifyConfigRequest(domain_name=domain, **fields)
    )


def update(client, domain=DOMAIN, **fields):
    return client.update_live_record_notify_config(
        live_models.UpdateLiveRecordNotifyConfigRequest(domain_name=domain, **fields)
    )


def delete(client, domain=DOMAIN):
    return client.delete_live_record_notify_config(
        live_models.DeleteLiveRecordNotifyConfigRequest(domain_name=domain)
    )


def describe(client, domain=DOMAIN):
    return client.describe_live_record_notify_config(
        live_models.DescribeLiveRecordNotifyConfigRequest(domain_name=domain)
    )


def described(client, domain=DOMAIN) -> dict:
    resp = describe(client, domain)
    assert_ok(resp)
    return resp.body.live_record_notify_config.to_map()


def records(client, domain=DOMAIN, start: str | None = None, end: str | None = None, **fields):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    return client.describe_live_record_notify_records(
        live_models.DescribeLiveRecordNotifyRecordsRequest(
            domain_name=domain,
            start_time=start or utc(now - timedelta(hours=1)),
            end_time=end or utc(now + timedelta(minutes=1)),
            **fields,
        )
    )


def test_add_then_describe_round_trips_every_field(server):
    client = server.client()
    resp = add(
        client,
        domain="Notify.Example.COM",
        notify_url="http://127.0.0.1:9/record-events?token=a%20b",
        on_demand_url="https://od.example.com/should-record",
        need_status_notify=True,
        notify_req_auth=True,
        notify_auth_key=AUTH_KEY,
    )
    assert_ok(resp)
    got = described(client, "notify.example.com")
    assert got == {
        "DomainName": "notify.example.com",
        "NotifyUrl": "http://127.0.0.1:9/record-events?token=a%20b",
        "OnDemandUrl": "https://od.example.com/should-record",
        "NeedStatusNotify": True,
        "NotifyReqAuth": True,
        "NotifyAuthKey": AUTH_KEY,
    }, got
    # The domain is found in any case, as ingest and the other actions find it.
    assert described(client, "NOTIFY.example.com") == got


def test_minimal_add_takes_the_defaults(server):
    client = server.client()
    assert_ok(add(client, notify_url="https://cb.example.com/rec"))
    got = described(client)
    assert got == {
        "DomainName": DOMAIN,
        "NotifyUrl": "https://cb.example.com/rec",
        "NeedStatusNotify": False,
        "NotifyReqAuth": False,
    }, got
    # Booleans arrive as booleans, not strings.
    config = describe(client).body.live_record_notify_config
    assert config.need_status_notify is False and config.notify_req_auth is False


def test_one_config_per_domain(server):
    client = server.client()
    assert_ok(add(client, notify_url="https://cb.example.com/1"))
    expect_error(lambda: add(client, notify_url="https://cb.example.com/2"), 400, "ConfigAlreadyExists",
                 "Config has already exist.")
    assert described(client)["NotifyUrl"] == "https://cb.example.com/1"
    # Another domain has its own.
    assert_ok(add(client, domain="other.example.com", notify_url="https://cb.example.com/3"))
    assert described(client, "other.example.com")["NotifyUrl"] == "https://cb.example.com/3"
    assert described(client)["NotifyUrl"] == "https://cb.example.com/1"


def test_update_replaces_the_whole_config(server):
    client = server.client()
    assert_ok(add(client, notify_url="https://cb.example.com/old", on_demand_url="https://od.example.com/q",
                  need_status_notify=True, notify_req_auth=True, notify_auth_key=AUTH_KEY))
    assert_ok(update(client, notify_url="https://cb.example.com/new"))
    got = described(client)
    # Left out means the default, as on Add: no OnDemandUrl, no status callbacks, no signing.
    assert got == {
        "DomainName": DOMAIN,
        "NotifyUrl": "https://cb.example.com/new",
        "NeedStatusNotify": False,
        "NotifyReqAuth": False,
    }, got
    other_key = "Z" * 32
    assert_ok(update(client, notify_url="https://cb.example.com/newer", need_status_notify=True,
                     notify_req_auth=True, notify_auth_key=other_key, on_demand_url="http://od.example.com/2"))
    got = described(client)
    assert got == {
        "DomainName": DOMAIN,
        "NotifyUrl": "https://cb.example.com/newer",
        "OnDemandUrl": "http://od.example.com/2",
        "NeedStatusNotify": True,
        "NotifyReqAuth": True,
        "NotifyAuthKey": other_key,
    }, got


def test_without_a_config_update_delete_and_describe_are_404(server):
    client = server.client()
    expect_error(lambda: describe(client), 404, "InvalidConfig.NotFound", CONFIG_NOT_FOUND)
    expect_error(lambda: update(client, notify_url="https://cb.example.com/x"), 404, "InvalidConfig.NotFound",
                 CONFIG_NOT_FOUND)
    expect_error(lambda: delete(client), 404, "InvalidConfig.NotFound", CONFIG_NOT_FOUND)
    # A refused Update created nothing.
    expect_error(lambda: describe(client), 404, "InvalidConfig.NotFound", CONFIG_NOT_FOUND)


def test_delete_then_describe_is_404_and_add_works_again(server):
    client = server.client()
    assert_ok(add(client, notify_url="https://cb.example.com/1"))
    assert_ok(delete(client))
    expect_error(lambda: describe(client), 404, "InvalidConfig.NotFound", CONFIG_NOT_FOUND)
    expect_error(lambda: delete(client), 404, "InvalidConfig.NotFound", CONFIG_NOT_FOUND)
    assert_ok(add(client, notify_url="https://cb.example.com/2"))
    assert described(client)["NotifyUrl"] == "https://cb.example.com/2"


def test_config_parameter_errors(server):
    client = server.client()
    url = "https://cb.example.com/rec"
    invalid = 'The specified value of parameter "{}" is not valid.'
    cases = [
        (dict(domain=None, notify_url=url), "MissingDomainName", "DomainName is mandatory for this action."),
        (dict(domain="bad..domain", notify_url=url), "InvalidParameter", invalid.format("DomainName")),
        (dict(), "MissingNotifyUrl", "NotifyUrl is mandatory for this action."),
        (dict(notify_url="cb.example.com/rec"), "InvalidNotifyUrl.Malformed", "Specified NotifyUrl is invalid."),
        (dict(notify_url="ftp://cb.example.com/rec"), "InvalidNotifyUrl.Malformed",
         "Specified NotifyUrl is invalid."),
        (dict(notify_url="http://user:secret@cb.example.com/rec"), "InvalidNotifyUrl.Malformed",
         "Specified NotifyUrl is invalid."),
        (dict(notify_url=url, on_demand_url="od.example.com"), "InvalidParameter", invalid.format("OnDemandUrl")),
        (dict(notify_url=url, notify_req_auth=True), "MissingNotifyAuthKey",
         "NotifyAuthKey is mandatory for this action."),
        (dict(notify_url=url, notify_req_auth=True, notify_auth_key="tooShort123"), "InvalidParameter",
         invalid.format("NotifyAuthKey")),
        (dict(notify_url=url, notify_req_auth=True, notify_auth_key="x" * 33), "InvalidParameter",
         invalid.format("NotifyAuthKey")),
        (dict(notify_url=url, notify_req_auth=True, notify_auth_key="abcdefgh_2345678"), "InvalidParameter",
         invalid.format("NotifyAuthKey")),
    ]
    for fields, code, message in cases:
        expect_error(lambda: add(client, **{"domain": DOMAIN, **fields}), 400, code, message)
        expect_error(lambda: describe(client), 404, "InvalidConfig.NotFound")
    # Update checks its parameters the same way before looking for the config.
    assert_ok(add(client, notify_url=url))
    for fields, code, message in cases:
        expect_error(lambda: update(client, **{"domain": DOMAIN, **fields}), 400, code, message)
    assert described(client)["NotifyUrl"] == url


def test_private_hosts_are_refused_when_configured(start_server):
    server = start_server(extra={"notify": {"allow_private_hosts": False}})
    client = server.client()
    for url in ["http://127.0.0.1:8000/cb", "http://localhost/cb", "http://10.1.2.3/cb", "http://[::1]/cb",
                "http://169.254.169.254/latest/meta-data"]:
        expect_error(lambda: add(client, notify_url=url), 400, "InvalidNotifyUrl.Unsafe",
                     "Specified NotifyUrl is not safe.")
    expect_error(lambda: add(client, notify_url="https://cb.example.com/", on_demand_url="http://192.168.1.1/od"),
                 400, "InvalidParameter", 'The specified value of parameter "OnDemandUrl" is not valid.')
    # A malformed URL stays malformed, whatever its host.
    expect_error(lambda: add(client, notify_url="gopher://127.0.0.1/"), 400, "InvalidNotifyUrl.Malformed")
    expect_error(lambda: describe(client), 404, "InvalidConfig.NotFound")
    assert_ok(add(client, notify_url="https://cb.example.com/", on_demand_url="https://8.8.8.8/od"))
    expect_error(lambda: update(client, notify_url="http://127.0.0.1/cb"), 400, "InvalidNotifyUrl.Unsafe")
    assert described(client)["NotifyUrl"] == "https://cb.example.com/"


def test_strict_domains(start_server):
    server = start_server(extra={"domains": ["known.example.com"], "api": {"strict_domains": True}})
    client = server.client()
    unknown = "unknown.example.com"
    not_found = "The domain provided does not exist in our records."
    url = "https://cb.example.com/rec"
    expect_error(lambda: add(client, domain=unknown, notify_url=url), 404, "InvalidDomain.NotFound", not_found)
    expect_error(lambda: update(client, domain=unknown, notify_url=url), 404, "InvalidDomain.NotFound")
    expect_error(lambda: delete(client, domain=unknown), 404, "InvalidDomain.NotFound")
    expect_error(lambda: describe(client, domain=unknown), 404, "InvalidDomain.NotFound")
    expect_error(lambda: records(client, domain=unknown), 404, "InvalidDomain.NotFound")
    assert_ok(add(client, domain="Known.Example.com", notify_url=url))
    assert described(client, "known.example.com")["NotifyUrl"] == url
    assert_ok(records(client, domain="known.example.com"))


def test_a_first_add_brings_the_domain_into_being(server):
    # Without strict mode any domain may be used; Add records it as AddLiveAppRecordConfig does.
    client = server.client()
    assert_ok(add(client, domain="fresh.example.net", notify_url="https://cb.example.com/"))
    assert described(client, "fresh.example.net")["DomainName"] == "fresh.example.net"


def test_notify_records_empty(server):
    client = server.client()
    # No config and no callbacks: an empty answer, not an error.
    resp = records(client)
    assert_ok(resp)
    body = resp.body
    assert body.callback_list == [], body.to_map()
    assert (body.total_num, body.total_page, body.page_num, body.page_size) == (0, 0, 1, 20), body.to_map()
    assert (body.code, body.msg) == (200, "OK"), body.to_map()
    assert isinstance(body.code, int)

    assert_ok(add(client, notify_url="https://cb.example.com/"))
    for fields in [dict(page_number=3, page_size=500), dict(status="success"), dict(status="failed"),
                   dict(app_name="live", stream_name="cam1"), dict(storage_type="oss"), dict(storage_type="vod"),
                   dict(storage_type="all"), dict(region_id="cn-shanghai")]:
        body = records(client, **fields).body
        assert body.callback_list == [] and body.total_num == 0, (fields, body.to_map())
        assert body.page_num == fields.get("page_number", 1), body.to_map()
        assert body.page_size == fields.get("page_size", 20), body.to_map()


def test_notify_records_parameter_errors(server):
    client = server.client()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    start, end = utc(now - timedelta(hours=1)), utc(now)
    invalid = 'The specified value of parameter "{}" is not valid.'

    def call(**fields):
        request = {"domain_name": DOMAIN, "start_time": start, "end_time": end, **fields}
        return client.describe_live_record_notify_records(
            live_models.DescribeLiveRecordNotifyRecordsRequest(**request)
        )

    cases = [
        (dict(domain_name=None), "MissingDomainName", None),
        (dict(start_time=None), "MissingStartTime", "StartTime is mandatory for this action."),
        (dict(end_time=None), "MissingEndTime", "EndTime is mandatory for this action."),
        (dict(start_time=start.replace("T", " ")), "InvalidStartTime.Malformed", "Specified StartTime is malformed."),
        (dict(end_time=end[:10]), "InvalidEndTime.Malformed", "Specified EndTime is malformed."),
        (dict(start_time=end, end_time=start), "InvalidEndTime.Mismatch",
         "Specified end time does not math the specified start time."),
        (dict(start_time=end), "InvalidEndTime.Mismatch", None),
        (dict(start_time=utc(now - timedelta(days=7, seconds=1))), "InvalidEndTime.Mismatch", None),
        (dict(status="ok"), "InvalidParameter", invalid.format("Status")),
        (dict(storage_type="s3"), "InvalidParameter", invalid.format("StorageType")),
        (dict(page_number=0), "InvalidParameter", invalid.format("PageNumber")),
        (dict(page_number=100001), "InvalidParameter", invalid.format("PageNumber")),
        (dict(page_size=0), "InvalidParameter", invalid.format("PageSize")),
        (dict(page_size=501), "InvalidParameter", invalid.format("PageSize")),
        (dict(app_name="a/b"), "InvalidParameter", invalid.format("AppName")),
        (dict(stream_name="*"), "InvalidParameter", invalid.format("StreamName")),
    ]
    for fields, code, message in cases:
        expect_error(lambda: call(**fields), 400, code, message)
    # Exactly seven days is allowed.
    assert_ok(call(start_time=utc(now - timedelta(days=7))))


class CallbackReceiver:
    """A real HTTP receiver on 127.0.0.1: POSTs to /ok get 200, to /fail get 500."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.append((self.path, dict(self.headers), body))
                status = 200 if self.path == "/ok" else 500
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"no")

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}{path}"

    def close(self):
        self.http.shutdown()


def test_notify_records_list_real_deliveries(start_server, publish):
    receiver = CallbackReceiver()
    try:
        server = start_server(record={"delay_secs": 1, "formats": [{"format": "mp4", "cycle_secs": 3}]})
        client = server.client()
        ok_domain, fail_domain = "ok.example.com", "fail.example.com"
        assert_ok(add(client, domain=ok_domain, notify_url=receiver.url("/ok"), need_status_notify=True))
        assert_ok(add(client, domain=fail_domain, notify_url=receiver.url("/fail")))
        ok_pub = publish(server.rtmp_url("live", "cam1", domain=ok_domain))
        fail_pub = publish(server.rtmp_url("live", "cam2", domain=fail_domain))
        ok_pub.wait_position(7.0)
        fail_pub.wait_position(7.0)
        ok_pub.stop()
        fail_pub.stop()

        def listed(domain, **fields):
            # The page and its TotalNum are two reads; a callback attempted between them makes
            # them differ for a moment (the list is still being written to), so read again.
            for _ in range(20):
                body = records(client, domain=domain, page_size=100, **fields).body
                if body.total_num == len(body.callback_list):
                    return body.callback_list
                time.sleep(0.1)
            raise AssertionError(f"TotalNum never matched the list: {body.to_map()}")

        # Files and status events of the good receiver: delivered, success.
        deadline = time.monotonic() + 30
        while True:
            ok = listed(ok_domain)
            types = sorted({r.notify_type for r in ok})
            if {"file_created", "record_started", "record_paused"} <= set(types):
                break
            assert time.monotonic() < deadline, [r.to_map() for r in ok]
            time.sleep(0.3)
        files = [r for r in ok if r.notify_type == "file_created"]
        assert len(files) >= 2, [r.to_map() for r in ok]
        delivered = [json.loads(body) for path, _, body in receiver.received if path == "/ok"]
        for r in ok:
            assert (r.notify_result, r.domain_name, r.app_name, r.notify_url) == (
                "success", ok_domain, "live", receiver.url("/ok")), r.to_map()
            assert r.stream_name == "cam1" and r.storage_type == "oss", r.to_map()
            assert json.loads(r.notify_content) in delivered, r.to_map()
            assert "Idempotency-Key" in r.notify_header, r.to_map()
            assert r.notify_response == "HTTP 200: ok", r.to_map()
        for r in files:
            assert json.loads(r.notify_content)["uri"].endswith(".mp4"), r.to_map()
        assert listed(ok_domain, status="failed") == []

        # The failing receiver's callbacks are listed as failed after their first attempt.
        deadline = time.monotonic() + 30
        while not (failed := listed(fail_domain, status="failed")):
            assert time.monotonic() < deadline
            time.sleep(0.3)
        assert all(r.notify_result == "failed" and r.notify_response == "HTTP 500: no" for r in failed), \
            [r.to_map() for r in failed]
        assert {r.notify_type for r in failed} == {"file_created"}, "no status events without NeedStatusNotify"
        assert listed(fail_domain, status="success") == []

        # Paging and the time range.
        page = records(client, domain=ok_domain, page_size=1, page_number=2).body
        assert (page.page_num, page.page_size, len(page.callback_list)) == (2, 1, 1), page.to_map()
        assert page.total_num == len(ok) and page.total_page == len(ok), page.to_map()
        now = datetime.now(timezone.utc)
        past = records(client, domain=ok_domain, start=utc(now - timedelta(hours=2)),
                       end=utc(now - timedelta(hours=1))).body
        assert past.callback_list == [] and past.total_num == 0, past.to_map()
    finally:
        receiver.close()


# ---------------------------------------------------------------------------------------------
# The older SDK


def legacy_run(client, req) -> dict:
    body = json.loads(client.do_action_with_exception(req))
    assert UUID_UPPER.match(body.get("RequestId", "")), body
    return body


def test_legacy_sdk_add_update_describe_delete(server):
    client = server.legacy_client()
    req = server.legacy_request(AddLiveRecordNotifyConfigRequest)
    req.set_DomainName(DOMAIN)
    req.set_NotifyUrl("http://cb.example.com/legacy")
    req.set_OnDemandUrl("http://od.example.com/legacy")
    req.set_NeedStatusNotify(True)
    legacy_run(client, req)

    again = server.legacy_request(AddLiveRecordNotifyConfigRequest)
    again.set_DomainName(DOMAIN)
    again.set_NotifyUrl("http://cb.example.com/again")
    expect_legacy_error(lambda: client.do_action_with_exception(again), 400, "ConfigAlreadyExists",
                        "Config has already exist.")

    req = server.legacy_request(DescribeLiveRecordNotifyConfigRequest)
    req.set_DomainName(DOMAIN)
    body = legacy_run(client, req)
    assert body["LiveRecordNotifyConfig"] == {
        "DomainName": DOMAIN,
        "NotifyUrl": "http://cb.example.com/legacy",
        "OnDemandUrl": "http://od.example.com/legacy",
        "NeedStatusNotify": True,
        "NotifyReqAuth": False,
    }, body

    # XML, as the older SDK's Format=XML asks for it.
    req = server.legacy_request(DescribeLiveRecordNotifyConfigRequest)
    req.set_DomainName(DOMAIN)
    req.set_accept_format("XML")
    with warnings.catch_warnings():  # the older SDK's only call that keeps the format asked for
        warnings.simplefilter("ignore", DeprecationWarning)
        status, headers, raw = client.get_response(req)
    assert (status, headers.get("Content-Type")) == (200, "text/xml;charset=utf-8"), raw
    root = ET.fromstring(raw)
    assert root.tag == "DescribeLiveRecordNotifyConfigResponse"
    assert root.findtext("LiveRecordNotifyConfig/NotifyUrl") == "http://cb.example.com/legacy"
    assert root.findtext("LiveRecordNotifyConfig/NeedStatusNotify") == "true"

    req = server.legacy_request(UpdateLiveRecordNotifyConfigRequest)
    req.set_DomainName(DOMAIN)
    req.set_NotifyUrl("not a url")
    expect_legacy_error(lambda: client.do_action_with_exception(req), 400, "InvalidNotifyUrl.Malformed",
                        "Specified NotifyUrl is invalid.")
    req = server.legacy_request(UpdateLiveRecordNotifyConfigRequest)
    req.set_DomainName(DOMAIN)
    req.set_NotifyUrl("https://cb.example.com/updated")
    req.set_NeedStatusNotify(False)
    legacy_run(client, req)
    req = server.legacy_request(DescribeLiveRecordNotifyConfigRequest)
    req.set_DomainName(DOMAIN)
    config = legacy_run(client, req)["LiveRecordNotifyConfig"]
    assert (config["NotifyUrl"], config["NeedStatusNotify"], config.get("OnDemandUrl")) == (
        "https://cb.example.com/updated", False, None), config

    req = server.legacy_request(DeleteLiveRecordNotifyConfigRequest)
    req.set_DomainName(DOMAIN)
    legacy_run(client, req)
    req = server.legacy_request(DescribeLiveRecordNotifyConfigRequest)
    req.set_DomainName(DOMAIN)
    expect_legacy_error(lambda: client.do_action_with_exception(req), 404, "InvalidConfig.NotFound",
                        CONFIG_NOT_FOUND)


def test_legacy_sdk_notify_records_is_a_bare_list(server):
    """The current SDK model reads `CallbackList` as an array (no wrapper object); the raw JSON
    shows it is one."""
    client = server.legacy_client()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    req = server.legacy_request(DescribeLiveRecordNotifyRecordsRequest)
    req.set_DomainName(DOMAIN)
    req.set_StartTime(utc(now - timedelta(days=1)))
    req.set_EndTime(utc(now))
    req.set_PageNumber(1)
    req.set_PageSize(10)
    req.set_Status("failed")
    body = legacy_run(client, req)
    assert body["CallbackList"] == [], body
    assert (body["Code"], body["Msg"], body["PageNum"], body["PageSize"], body["TotalNum"], body["TotalPage"]) == (
        200, "OK", 1, 10, 0, 0), body
