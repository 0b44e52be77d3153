"""Access keys as a user meets them: the bootstrap key of a fresh install and `liverec keys`,
each used through the current SDK; secrets never reach the log."""

from __future__ import annotations

import stat
import time

import pytest

from liverec_support import assert_ok, describe_configs, expect_error, sdk_client

DOMAIN = "keys.example.com"
KEY_NOT_FOUND = "Specified access key is not found."
# A running server reads a key again once its cached copy is a second old (docs/API.md).
KEY_CACHE_SECS = 1.0


def within_key_cache_ttl(check):
    """Runs `check` until it passes, for at most the key cache's TTL plus slack."""
    deadline = time.monotonic() + KEY_CACHE_SECS + 2.0
    while True:
        try:
            return check()
        except (Exception, pytest.fail.Exception):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_a_fresh_install_writes_a_bootstrap_key_the_sdk_can_use(start_server):
    server = start_server(env_key=False)
    path = server.data_dir / "bootstrap-access-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600, oct(path.stat().st_mode)
    key_id, secret = server.bootstrap_key()
    assert key_id and secret
    assert_ok(describe_configs(sdk_client(server.api_endpoint, key_id, secret), DOMAIN))
    log = server.log()
    assert str(path) in log, "the bootstrap key's path is logged"
    assert secret not in log, "the secret must never be logged"

    # A restart keeps the key and writes no new one.
    assert server.stop() == 0
    server.start()
    assert server.bootstrap_key() == (key_id, secret)
    assert_ok(describe_configs(sdk_client(server.api_endpoint, key_id, secret), DOMAIN))


def test_keys_created_disabled_and_enabled_with_the_cli(server):
    created = server.cli("keys", "create")
    assert created.returncode == 0, created.stderr
    fields = dict(line.split("=", 1) for line in created.stdout.splitlines() if "=" in line)
    key_id, secret = fields["AccessKeyId"], fields["AccessKeySecret"]
    client = sdk_client(server.api_endpoint, key_id, secret)
    assert_ok(describe_configs(client, DOMAIN))

    listed = server.cli("keys", "list")
    assert listed.returncode == 0, listed.stderr
    assert any(key_id in line and "enabled" in line for line in listed.stdout.splitlines()), listed.stdout
    assert secret not in listed.stdout, "list shows no secrets"

    disabled = server.cli("keys", "disable", key_id)
    assert disabled.returncode == 0, disabled.stderr
    within_key_cache_ttl(
        lambda: expect_error(lambda: describe_configs(client, DOMAIN), 404, "InvalidAccessKeyId.NotFound", KEY_NOT_FOUND)
    )
    # The other keys are untouched.
    assert_ok(describe_configs(server.client(), DOMAIN))

    enabled = server.cli("keys", "enable", key_id)
    assert enabled.returncode == 0, enabled.stderr
    within_key_cache_ttl(lambda: assert_ok(describe_configs(client, DOMAIN)))
    log = server.log()
    assert secret not in log and server.key_secret not in log, "secrets must never be logged"
