"""Fixtures: every test starts its own liverec server(s) and publishers; teardown stops the
publishers, then SIGTERMs the servers and expects a clean exit. A failing test's report
carries each server's log."""

from __future__ import annotations

import pytest

from liverec_support import Publisher, Server, liverec_bin, require_asset


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for i, server in enumerate(getattr(item, "liverec_servers", [])):
            report.sections.append((f"liverec server {i} log ({server.dir})", server.full_log()))
        for i, pub in enumerate(getattr(item, "liverec_publishers", [])):
            text = pub.stderr()
            if text:
                report.sections.append((f"publisher {i} ffmpeg stderr ({pub.url})", text))


@pytest.fixture
def start_server(request, tmp_path):
    """Factory: `start_server(record={...}, extra={...}, env_key=True)` starts a server whose
    config has `[record]` overridden by `record` and any other settings from `extra`; with
    `env_key=False` no access key comes from the environment."""
    binary = liverec_bin()
    require_asset()
    servers: list[Server] = []
    request.node.liverec_servers = servers

    def start(record: dict | None = None, extra: dict | None = None, env_key: bool = True) -> Server:
        workdir = tmp_path / f"server{len(servers)}"
        workdir.mkdir()
        server = Server(binary, workdir, record=record, extra=extra, env_key=env_key)
        servers.append(server)
        return server.start()

    yield start
    codes = [(server, server.stop()) for server in servers if server.started]
    unclean = [(str(s.log_path), c) for s, c in codes if c != 0]
    if unclean:
        pytest.fail(f"liverec did not exit cleanly on SIGTERM: {unclean}", pytrace=False)


@pytest.fixture
def server(start_server) -> Server:
    """A server with the built-in config of the test config file (automatic MP4, delay 2 s)."""
    return start_server()


@pytest.fixture
def publish(request, start_server):
    """Factory: `publish(url, loop=True)` starts an ffmpeg publisher, stopped at teardown
    (before the servers, which depend on it through start_server)."""
    publishers: list[Publisher] = []
    request.node.liverec_publishers = publishers

    def start(url: str, loop: bool = True) -> Publisher:
        pub = Publisher(url, loop=loop)
        publishers.append(pub)
        return pub

    yield start
    for pub in publishers:
        pub.stop()
