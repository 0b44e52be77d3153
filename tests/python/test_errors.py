"""Documented errors through the current SDK: it raises with the HTTP status, Code, Message and
RequestId of liverec's Alibaba-style error body (API.md, "Transport")."""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException

from liverec_support import (
    assert_ok,
    command,
    describe_configs,
    expect_error,
    manual_config,
    sdk_client,
)

DOMAIN = "err.example.com"
APP = "live"
STREAM = "cam1"
SIGNATURE_MISMATCH = re.compile(
    r"^Specified signature does not match our calculation\. server string to sign is:"
    r"ACS3-HMAC-SHA256\n[0-9a-f]{64}$"
)


def test_start_while_recording_is_task_already_started(server, publish):
    client = server.client()
    assert_ok(manual_config(client, DOMAIN, APP))
    pub = publish(server.rtmp_url(APP, STREAM, DOMAIN))
    server.wait_publishing(DOMAIN, APP, STREAM)
    pub.wait_position(1.0)
    assert_ok(command(client, DOMAIN, APP, STREAM, "start"))
    expect_error(lambda: command(client, DOMAIN, APP, STREAM, "start"), 409, "TaskAlreadyStarted",
                 "Task has already started.")
    # The refused start changed nothing: the recording goes on and can be stopped.
    assert_ok(command(client, DOMAIN, APP, STREAM, "stop"))
    assert_ok(command(client, DOMAIN, APP, STREAM, "cancel_delay"))
    server.wait_for_files("rec", "mp4", 1)


def test_start_or_restart_of_a_stream_that_is_not_publishing(server):
    client = server.client()
    assert_ok(manual_config(client, DOMAIN, APP))
    for cmd in ("start", "restart"):
        expect_error(lambda: command(client, DOMAIN, APP, STREAM, cmd), 404, "InvalidStream.NotFound",
                     "Stream does not exist.")
    # stop and cancel_delay never need the stream (DESIGN.md's check order).
    assert_ok(command(client, DOMAIN, APP, STREAM, "stop"))
    assert_ok(command(client, DOMAIN, APP, STREAM, "cancel_delay"))


def test_command_for_a_stream_no_config_applies_to(server, publish):
    client = server.client()
    # A config for another app of the domain replaces the built-in one for the whole domain.
    assert_ok(manual_config(client, DOMAIN, "other"))
    pub = publish(server.rtmp_url(APP, STREAM, DOMAIN))
    server.wait_publishing(DOMAIN, APP, STREAM)
    pub.wait_position(1.0)
    for cmd in ("start", "stop", "cancel_delay", "restart"):
        expect_error(lambda: command(client, DOMAIN, APP, STREAM, cmd), 404, "InvalidConfig.NotFound",
                     "Config does not exist.")


def test_command_with_the_built_in_config_disabled(start_server):
    server = start_server(record={"enabled": False})
    client = server.client()
    expect_error(lambda: command(client, "any.example.com", APP, STREAM, "start"), 404,
                 "InvalidConfig.NotFound", "Config does not exist.")


@pytest.mark.parametrize("missing", ["Command", "DomainName", "AppName", "StreamName"])
def test_command_missing_a_parameter(server, missing):
    client = server.client()
    args = {"DomainName": DOMAIN, "AppName": APP, "StreamName": STREAM, "Command": "start", missing: None}
    message = ("Command is mandatory for this Command." if missing == "Command"
               else f"{missing} is mandatory for this action.")
    expect_error(lambda: command(client, args["DomainName"], args["AppName"], args["StreamName"], args["Command"]),
                 400, f"Missing{missing}", message)


@pytest.mark.parametrize("value", ["pause", "START", "start "])
def test_command_with_a_bad_command_value(server, value):
    client = server.client()
    assert_ok(manual_config(client, DOMAIN, APP))
    expect_error(lambda: command(client, DOMAIN, APP, STREAM, value), 400, "InvalidCommand.Malformed",
                 "Specified parameter Command is not valid.")


def test_wrong_secret_is_signature_does_not_match(server):
    client = server.client(secret=server.key_secret + "x")
    for call in (lambda: command(client, DOMAIN, APP, STREAM, "stop"), lambda: describe_configs(client, DOMAIN)):
        err = expect_error(call, 400, "SignatureDoesNotMatch")
        assert SIGNATURE_MISMATCH.match(err.data["Message"]), err.data["Message"]


def test_unknown_access_key(server):
    client = sdk_client(server.api_endpoint, "LTAI" + "0" * 20, server.key_secret)
    expect_error(lambda: command(client, DOMAIN, APP, STREAM, "stop"), 404, "InvalidAccessKeyId.NotFound",
                 "Specified access key is not found.")
    expect_error(lambda: describe_configs(client, DOMAIN), 404, "InvalidAccessKeyId.NotFound",
                 "Specified access key is not found.")


# API.md: RealTimeRecordCommand 50/s per account, a token bucket whose burst is one second's quota.
COMMAND_QPS = 50
THROTTLE_PROBE_REQUESTS = 200
THROTTLE_THREADS = 8


def test_over_the_rate_limit_is_throttled_and_under_it_is_not(server):
    assert_ok(manual_config(server.client(), DOMAIN, APP))
    local = threading.local()

    def one(_):
        if not hasattr(local, "client"):
            local.client = server.client()
        try:
            command(local.client, DOMAIN, APP, STREAM, "stop")
            return "ok"
        except AlibabaCloudException as err:
            return (err.status_code, err.code, (err.data or {}).get("Message"))

    time.sleep(1.1)  # a full bucket, whatever the config call took
    started = time.monotonic()
    with ThreadPoolExecutor(THROTTLE_THREADS) as pool:
        results = list(pool.map(one, range(THROTTLE_PROBE_REQUESTS)))
    elapsed = time.monotonic() - started
    refused = [r for r in results if r != "ok"]
    assert set(refused) <= {(400, "Throttling.User", "Request was denied due to user flow control.")}, set(refused)
    ok = len(results) - len(refused)
    assert ok >= COMMAND_QPS, f"only {ok} of the first second's {COMMAND_QPS} requests passed"
    assert ok <= COMMAND_QPS * (1 + elapsed) + 2, f"{ok} passed in {elapsed:.2f} s"
    if elapsed < 2.0:
        assert refused, f"{THROTTLE_PROBE_REQUESTS} requests in {elapsed:.2f} s and none throttled"
    # Throttling is per action: a record-config action still passes at once.
    assert_ok(describe_configs(server.client(), DOMAIN))
