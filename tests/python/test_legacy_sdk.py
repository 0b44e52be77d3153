"""The older SDK (aliyun-python-sdk-core + aliyun-python-sdk-live), still common in production:
RPC v1 HMAC-SHA1 signatures, JSON by default and XML on request."""

from __future__ import annotations

import json
import warnings
import xml.etree.ElementTree as ET

from aliyunsdklive.request.v20161101.AddLiveAppRecordConfigRequest import AddLiveAppRecordConfigRequest
from aliyunsdklive.request.v20161101.BatchSetLiveDomainConfigsRequest import BatchSetLiveDomainConfigsRequest
from aliyunsdklive.request.v20161101.DescribeLiveDomainConfigsRequest import DescribeLiveDomainConfigsRequest
from aliyunsdklive.request.v20161101.DescribeLiveStreamsBlockListRequest import DescribeLiveStreamsBlockListRequest
from aliyunsdklive.request.v20161101.ForbidLiveStreamRequest import ForbidLiveStreamRequest
from aliyunsdklive.request.v20161101.DescribeLiveRecordConfigRequest import DescribeLiveRecordConfigRequest
from aliyunsdklive.request.v20161101.RealTimeRecordCommandRequest import RealTimeRecordCommandRequest

from liverec_support import (
    AT_ONCE_SECS,
    UUID_UPPER,
    assert_valid_recording,
    expect_legacy_error,
    packets,
    runs,
    source,
)

DOMAIN = "legacy.example.com"
APP = "live"
STREAM = "cam1"
BUCKET = "legacy"
XML_CONTENT_TYPE = "text/xml;charset=utf-8"


def command_request(server, cmd: str | None, method: str = "POST"):
    req = server.legacy_request(RealTimeRecordCommandRequest)
    req.set_method(method)
    req.set_DomainName(DOMAIN)
    req.set_AppName(APP)
    req.set_StreamName(STREAM)
    if cmd is not None:
        req.set_Command(cmd)
    return req


def run(client, req) -> dict:
    body = json.loads(client.do_action_with_exception(req))
    assert UUID_UPPER.match(body.get("RequestId", "")), body
    return body


def add_request(server, stream: str | None = None, on_demand: int = 7, delay: int = 30, formats=None):
    req = server.legacy_request(AddLiveAppRecordConfigRequest)
    req.set_DomainName(DOMAIN)
    req.set_AppName(APP)
    if stream:
        req.set_StreamName(stream)
    req.set_OssEndpoint("oss-cn-hangzhou.aliyuncs.com")
    req.set_OssBucket(BUCKET)
    req.set_OnDemand(on_demand)
    req.set_DelayTime(delay)
    req.set_RecordFormats(formats or [{"Format": "mp4"}])
    return req


def raw_response(client, req):
    """(status, headers, body) whatever the format: the older SDK's only call that returns
    the response as it came (deprecated, hence the filter)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return client.get_response(req)


def test_legacy_add_then_describe_config(server):
    client = server.legacy_client()
    formats = [
        {"Format": "mp4", "OssObjectPrefix": "old/{AppName}/{StreamName}/{EscapedStartTime}_{EscapedEndTime}",
         "CycleDuration": 3600},
        {"Format": "m3u8", "OssObjectPrefix": "old/{AppName}/{StreamName}/{EscapedStartTime}_{EscapedEndTime}",
         "SliceOssObjectPrefix": "old/{AppName}/{StreamName}/{UnixTimestamp}_{Sequence}",
         "CycleDuration": 7200, "SliceDuration": 10},
    ]
    run(client, add_request(server, stream="s1", formats=formats))
    expect_legacy_error(lambda: client.do_action_with_exception(add_request(server, stream="s1")),
                        400, "ConfigAlreadyExists", "Config has already exist.")

    req = server.legacy_request(DescribeLiveRecordConfigRequest)
    req.set_DomainName(DOMAIN)
    body = run(client, req)
    assert body["TotalNum"] == 1, body
    [record] = body["LiveAppRecordList"]["LiveAppRecord"]
    assert (record["DomainName"], record["AppName"], record["StreamName"]) == (DOMAIN, APP, "s1")
    assert (record["OnDemond"], record["DelayTime"]) == (7, 30), record
    assert (record["OssBucket"], record["OssEndpoint"]) == (BUCKET, "oss-cn-hangzhou.aliyuncs.com")
    got = {f["Format"]: f for f in record["RecordFormatList"]["RecordFormat"]}
    assert sorted(got) == ["m3u8", "mp4"], got
    for sent in formats:
        assert {k: got[sent["Format"]].get(k) for k in sent} == sent, got


def test_legacy_real_time_record_command_records(server, publish):
    client = server.legacy_client()
    run(client, add_request(server, delay=15))
    pub = publish(server.rtmp_url(APP, STREAM, DOMAIN))
    server.wait_publishing(DOMAIN, APP, STREAM)
    pub.wait_position(1.5)
    run(client, command_request(server, "start"))
    err = expect_legacy_error(lambda: client.do_action_with_exception(command_request(server, "start")),
                              409, "TaskAlreadyStarted", "Task has already started.")
    assert err.request_id
    pub.wait_position(pub.position + 2.0)
    run(client, command_request(server, "stop", method="GET"))
    run(client, command_request(server, "cancel_delay"))
    [file] = server.wait_for_files(BUCKET, "mp4", 1, timeout=AT_ONCE_SECS)
    assert_valid_recording(file)
    src = source()
    video = src.video_positions(packets(file).video, file.name)
    assert len(runs(video, len(src.video))) == 1


def test_legacy_errors(server):
    client = server.legacy_client()
    run(client, add_request(server))
    expect_legacy_error(lambda: client.do_action_with_exception(command_request(server, None)),
                        400, "MissingCommand", "Command is mandatory for this Command.")
    expect_legacy_error(lambda: client.do_action_with_exception(command_request(server, "start")),
                        404, "InvalidStream.NotFound", "Stream does not exist.")
    # A wrong secret: the SDK compares the server's string to sign (after the `:` of the
    # SignatureDoesNotMatch message) with its own and, when equal, blames the secret.
    wrong = server.legacy_client(secret=server.key_secret + "x")
    expect_legacy_error(lambda: wrong.do_action_with_exception(command_request(server, "stop")),
                        400, "InvalidAccessKeySecret")
    unknown = server.legacy_client(key_id="LTAI" + "1" * 20)
    expect_legacy_error(lambda: unknown.do_action_with_exception(command_request(server, "stop")),
                        404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")


def test_legacy_format_xml(server):
    client = server.legacy_client()
    req = add_request(server)
    req.set_accept_format("XML")
    status, headers, body = raw_response(client, req)
    assert status == 200, body
    assert headers.get("Content-Type") == XML_CONTENT_TYPE, headers
    root = ET.fromstring(body)
    assert root.tag == "AddLiveAppRecordConfigResponse", body
    assert UUID_UPPER.match(root.findtext("RequestId") or ""), body

    req = command_request(server, "stop")
    req.set_accept_format("XML")
    status, headers, body = raw_response(client, req)
    assert status == 200, body
    assert headers.get("Content-Type") == XML_CONTENT_TYPE, headers
    root = ET.fromstring(body)
    assert root.tag == "RealTimeRecordCommandResponse" and [c.tag for c in root] == ["RequestId"], body
    assert UUID_UPPER.match(root.findtext("RequestId") or ""), body

    req = command_request(server, "pause")
    req.set_accept_format("XML")
    status, headers, body = raw_response(client, req)
    assert status == 400, body
    assert headers.get("Content-Type") == XML_CONTENT_TYPE, headers
    root = ET.fromstring(body)
    assert root.tag == "Error", body
    assert [c.tag for c in root] == ["RequestId", "HostId", "Code", "Message", "Recommend"] or {
        c.tag for c in root} == {"RequestId", "HostId", "Code", "Message", "Recommend"}, body
    assert root.findtext("Code") == "InvalidCommand.Malformed", body
    assert root.findtext("Message") == "Specified parameter Command is not valid.", body
    assert UUID_UPPER.match(root.findtext("RequestId") or ""), body

    req = server.legacy_request(DescribeLiveRecordConfigRequest)
    req.set_DomainName(DOMAIN)
    req.set_accept_format("XML")
    status, headers, body = raw_response(client, req)
    assert status == 200, body
    root = ET.fromstring(body)
    assert root.tag == "DescribeLiveRecordConfigResponse", body
    assert root.findtext("TotalNum") == "1", body
    record = root.find("LiveAppRecordList/LiveAppRecord")
    assert record is not None, body
    assert (record.findtext("AppName"), record.findtext("OnDemond"), record.findtext("DelayTime")) == (APP, "7", "30")
    assert record.findtext("RecordFormatList/RecordFormat/Format") == "mp4", body


def test_legacy_domain_configs_and_block_list(server):
    """The older SDK sends every parameter in a form body: aliauth and the block list work
    the same through it."""
    client = server.legacy_client()
    req = server.legacy_request(BatchSetLiveDomainConfigsRequest)
    req.set_DomainNames(DOMAIN)
    req.set_Functions(json.dumps([{"functionName": "aliauth", "functionArgs": [
        {"argName": "auth_type", "argValue": "type_a"},
        {"argName": "auth_key1", "argValue": "legacyKey123"}]}]))
    run(client, req)
    req = server.legacy_request(DescribeLiveDomainConfigsRequest)
    req.set_DomainName(DOMAIN)
    req.set_FunctionNames("aliauth")
    [config] = run(client, req)["DomainConfigs"]["DomainConfig"]
    args = {a["ArgName"]: a["ArgValue"] for a in config["FunctionArgs"]["FunctionArg"]}
    assert args == {"auth_type": "type_a", "auth_key1": "legacyKey123"}, config

    req = server.legacy_request(ForbidLiveStreamRequest)
    req.set_DomainName(DOMAIN)
    req.set_AppName(APP)
    req.set_StreamName(STREAM)
    req.set_LiveStreamType("publisher")
    req.set_ResumeTime("2031-01-01T00:00:00Z")
    run(client, req)
    req = server.legacy_request(DescribeLiveStreamsBlockListRequest)
    req.set_DomainName(DOMAIN)
    body = run(client, req)
    assert body["StreamUrls"]["StreamUrl"] == [f"{DOMAIN}/{APP}/{STREAM}"], body
    assert body["TotalNum"] == 1, body
