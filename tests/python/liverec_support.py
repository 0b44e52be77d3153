"""Helpers for the SDK tests: a liverec server in a temp dir on free ports, ffmpeg publishers
that report how far they have sent, both Alibaba SDKs pointed at the server, and checks of the
recorded files against the published asset (packet by packet, through their MD5s).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pytest
from alibabacloud_live20161101 import models as live_models
from alibabacloud_live20161101.client import Client as LiveClient
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from Tea.exceptions import TeaException

REPO_ROOT = Path(__file__).resolve().parents[2]
# 10 s, 25 fps, a keyframe every 25 frames (1 s), B-frames, AAC at 44.1 kHz (make-test-assets.sh).
ASSET = REPO_ROOT / "tests" / ".assets" / "h264_aac.flv"
FPS = 25
GOP_SECS = 1.0
REGION = "cn-shanghai"

# How long the server may take to bind both listeners (first start runs the migrations).
START_TIMEOUT_SECS = 30.0
# SIGTERM finalizes open recordings, bounded by shutdown_timeout_secs (10 s) in the config.
STOP_TIMEOUT_SECS = 20.0
# A finished recording file must appear within this after the event that ends it.
FILE_TIMEOUT_SECS = 20.0
# `cancel_delay` must produce the file "at once" (DESIGN.md: about a second on a local target;
# the margin is for two cores shared by parallel tests).
AT_ONCE_SECS = 5.0
# ffmpeg reports its output position this often (`-stats_period`), so a position read from the
# progress pipe lags the real one by up to about this much.
PROGRESS_PERIOD_SECS = 0.1
# The position the server sees lags ffmpeg's report by little on loopback; allow this much.
POSITION_SLACK_SECS = 0.25

UUID_UPPER = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$")
ALIBABA_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def liverec_bin() -> Path:
    """The binary under test: `LIVEREC_BIN`, else the debug build in the repo."""
    path = Path(os.environ.get("LIVEREC_BIN") or REPO_ROOT / "target" / "debug" / "liverec")
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"liverec binary {path} is missing: build it with `cargo build -p liverec` "
            "(scripts/test-python.sh does) or set LIVEREC_BIN",
            pytrace=False,
        )
    return path


def require_asset() -> Path:
    if not ASSET.is_file():
        pytest.fail(
            f"{ASSET} is missing: run scripts/make-test-assets.sh (scripts/test-python.sh does)",
            pytrace=False,
        )
    return ASSET


def new_access_key() -> tuple[str, str]:
    return "LTAI" + secrets.token_hex(10), secrets.token_urlsafe(22)


# ---------------------------------------------------------------------------------------------
# Config file


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {value!r}")


def to_toml(settings: dict) -> str:
    """Top-level scalars first, then one `[table]` per dict value (one level is all we need)."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in settings.items() if not isinstance(v, dict)]
    for name, table in settings.items():
        if isinstance(table, dict):
            lines.append(f"\n[{name}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# The server


class Server:
    """`liverec serve` in its own temp dir, both listeners on 127.0.0.1:0."""

    def __init__(self, binary: Path, workdir: Path, record: dict | None = None, extra: dict | None = None,
                 env_key: bool = True):
        self.binary = binary
        self.dir = workdir
        self.data_dir = workdir / "data"
        self.log_path = workdir / "server.log"  # this run's; earlier runs' in log_paths
        self.log_paths: list[Path] = []
        self.config_path = workdir / "liverec.toml"
        # The key handed over through LIVEREC_ACCESS_KEY_ID/SECRET; without it, a fresh data
        # dir gets a bootstrap key (read it with `bootstrap_key`).
        self.env_key = env_key
        self.key_id, self.key_secret = new_access_key() if env_key else ("", "")
        settings = {
            "rtmp_listen": "127.0.0.1:0",
            "api_listen": "127.0.0.1:0",
            "data_dir": str(self.data_dir),
            "shutdown_timeout_secs": 10,
            "record": {"delay_secs": 2, **(record or {})},
        }
        for key, value in (extra or {}).items():
            if isinstance(value, dict) and isinstance(settings.get(key), dict):
                settings[key].update(value)
            else:
                settings[key] = value
        self.settings = settings
        self.proc: subprocess.Popen | None = None
        self.rtmp_addr = ""
        self.api_addr = ""
        self.exit_code: int | None = None
        self.started = False

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> "Server":
        """Starts (or, after `stop`, restarts on the same data dir and key) the server."""
        self.log_path = self.dir / ("server.log" if not self.log_paths else f"server.{len(self.log_paths) + 1}.log")
        self.log_paths.append(self.log_path)
        self.started = False
        self.config_path.write_text(to_toml(self.settings))
        env = self.child_env()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [str(self.binary), "serve", "--config", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                env=env,
            )
        deadline = time.monotonic() + START_TIMEOUT_SECS
        while time.monotonic() < deadline:
            text = self.log()
            rtmp = re.search(r"rtmp ingest listening.*?\baddr=(\S+)", text)
            api = re.search(r"api listening.*?\baddr=(\S+)", text)
            if rtmp and api:
                self.rtmp_addr, self.api_addr = rtmp.group(1), api.group(1)
                self.started = True
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        code = self.proc.poll()
        self.kill()
        raise AssertionError(
            f"liverec did not log both `rtmp ingest listening addr=` and `api listening addr=` "
            f"within {START_TIMEOUT_SECS} s (exit code {code}); config:\n{to_toml(self.settings)}\n"
            f"log:\n{self.log()}"
        )

    def child_env(self) -> dict[str, str]:
        # Only our LIVEREC_* reach the child: any other would be read as a setting (and
        # unknown ones are refused), e.g. the LIVEREC_BIN this suite itself reads.
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEREC_")}
        env["LIVEREC_LOG"] = os.environ.get("LIVEREC_TEST_SERVER_LOG", "info")
        if self.env_key:
            env.update(LIVEREC_ACCESS_KEY_ID=self.key_id, LIVEREC_ACCESS_KEY_SECRET=self.key_secret)
        return env

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        """`liverec keys …` and the like, on this server's config and data dir."""
        command, rest = args[0], args[1:]
        env = self.child_env()
        env.pop("LIVEREC_ACCESS_KEY_ID", None)
        env.pop("LIVEREC_ACCESS_KEY_SECRET", None)
        return subprocess.run([str(self.binary), command, "--config", str(self.config_path), *rest],
                              capture_output=True, text=True, env=env, timeout=30, check=False)

    def bootstrap_key(self) -> tuple[str, str]:
        """The key a fresh install wrote to data/bootstrap-access-key."""
        fields = dict(
            line.split("=", 1) for line in (self.data_dir / "bootstrap-access-key").read_text().splitlines() if "=" in line
        )
        return fields["AccessKeyId"], fields["AccessKeySecret"]

    def stop(self) -> int | None:
        """SIGTERM, then wait for the graceful shutdown; returns the exit code."""
        if self.proc is None:
            return self.exit_code
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_SECS)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.exit_code = self.proc.returncode
        self.proc = None
        return self.exit_code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- log ---------------------------------------------------------------------------------

    def log(self, path: Path | None = None) -> str:
        """This run's log (or the one at `path`)."""
        try:
            return ANSI.sub("", (path or self.log_path).read_text(errors="replace"))
        except FileNotFoundError:
            return ""

    def full_log(self) -> str:
        return "\n".join(f"--- {p.name}\n{self.log(p)}" for p in self.log_paths)

    def log_lines(self, *needles: str) -> list[str]:
        return [line for line in self.log().splitlines() if all(n in line for n in needles)]

    def wait_for_log(self, *needles: str, count: int = 1, timeout: float = FILE_TIMEOUT_SECS) -> list[str]:
        """Waits until `count` log lines contain every needle."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.log_lines(*needles)
            if len(lines) >= count:
                return lines
            if time.monotonic() > deadline or not self.alive():
                raise AssertionError(f"fewer than {count} log lines with {needles} within {timeout} s")
            time.sleep(0.05)

    def wait_publishing(self, domain: str, app: str, stream: str, timeout: float = 10.0) -> None:
        self.wait_for_log("publish started", f"stream={domain}/{app}/{stream}", timeout=timeout)

    # -- endpoints ---------------------------------------------------------------------------

    @property
    def api_endpoint(self) -> str:
        """What a user puts in the SDK's endpoint: `host:port`."""
        return self.api_addr

    def rtmp_url(self, app: str, stream: str, domain: str | None = None) -> str:
        url = f"rtmp://{self.rtmp_addr}/{app}/{stream}"
        return f"{url}?vhost={domain}" if domain else url

    def client(self, key_id: str | None = None, secret: str | None = None) -> LiveClient:
        return sdk_client(self.api_endpoint, key_id or self.key_id, secret or self.key_secret)

    def legacy_client(self, key_id: str | None = None, secret: str | None = None) -> AcsClient:
        return AcsClient(key_id or self.key_id, secret or self.key_secret, REGION, auto_retry=False, timeout=15)

    def legacy_request(self, request_class):
        """A request of the older SDK aimed at this server (a fresh one per call: the older
        SDK's request objects accumulate state, e.g. the User-Agent, when reused)."""
        request = request_class()
        request.set_endpoint(self.api_endpoint)
        request.set_protocol_type("http")
        return request

    # -- files -------------------------------------------------------------------------------

    def bucket_dir(self, bucket: str) -> Path:
        return self.data_dir / "buckets" / bucket

    def files(self, bucket: str, ext: str) -> list[Path]:
        """Finished objects of a bucket with the extension, oldest first (spool left out)."""
        root = self.bucket_dir(bucket)
        if not root.is_dir():
            return []
        found = [
            p
            for p in root.rglob(f"*.{ext}")
            if ".spool" not in p.relative_to(root).parts and not p.name.endswith("_init.mp4")
        ]
        return sorted(found, key=object_order)

    def wait_for_files(self, bucket: str, ext: str, count: int, timeout: float = FILE_TIMEOUT_SECS) -> list[Path]:
        """Waits for `count` finished files; more than that is an error too."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.files(bucket, ext)
            if len(found) > count:
                raise AssertionError(f"expected {count} .{ext} files in bucket {bucket}, found {found}")
            if len(found) == count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(found)} of {count} .{ext} files in bucket {bucket} after {timeout} s: {found}"
                )
            time.sleep(0.05)

    def assert_no_new_files(self, bucket: str, ext: str, expected: int, for_secs: float) -> None:
        """The bucket keeps exactly `expected` files of `ext` for `for_secs`."""
        deadline = time.monotonic() + for_secs
        while time.monotonic() < deadline:
            found = self.files(bucket, ext)
            assert len(found) == expected, f"expected {expected} .{ext} files, found {found}"
            time.sleep(0.1)


_OBJECT_NAME = re.compile(r"(\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d)_(\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d)(?:_(\d+))?$")


def object_order(path: Path):
    """Sort key: start time, end time, then the collision suffix (`_1`, `_2` …)."""
    m = _OBJECT_NAME.search(path.stem)
    if not m:
        return (str(path.parent), path.stem, "", 0)
    return (str(path.parent), m.group(1), m.group(2), int(m.group(3) or 0))


# ---------------------------------------------------------------------------------------------
# SDK clients and their errors


def sdk_client(endpoint: str, key_id: str, secret: str) -> LiveClient:
    """The current SDK exactly as a user configures it, with liverec's address as endpoint."""
    return LiveClient(
        open_api_models.Config(
            access_key_id=key_id,
            access_key_secret=secret,
            endpoint=endpoint,
            protocol="http",
            region_id=REGION,
            connect_timeout=5000,
            read_timeout=15000,
        )
    )


def header(headers: dict, name: str) -> str | None:
    for k, v in (headers or {}).items():
        if k.lower() == name.lower():
            return v
    return None


def assert_ok(response) -> None:
    """A current-SDK response: 200, JSON content type, an upper-case UUID RequestId."""
    assert response.status_code == 200
    assert header(response.headers, "content-type") == "application/json;charset=utf-8"
    assert UUID_UPPER.match(response.body.request_id or ""), response.body.request_id


def expect_error(call, status: int, code: str, message: str | None = None) -> AlibabaCloudException:
    """Runs `call`, which must fail through the current SDK with this status and code (and
    message, if given); also checks the Alibaba error body around it."""
    with pytest.raises(AlibabaCloudException) as info:
        call()
    err = info.value
    body = err.data or {}
    assert isinstance(err, TeaException), "callers written for older releases catch TeaException"
    assert (err.status_code, err.code) == (status, code), f"expected {status} {code}, got {err.status_code} {body}"
    if message is not None:
        assert body.get("Message") == message, body
    assert UUID_UPPER.match(err.request_id or ""), err.request_id
    for key in ("RequestId", "HostId", "Code", "Message", "Recommend"):
        assert key in body, f"{key} missing from error body {body}"
    return err


def expect_legacy_error(call, status: int, code: str, message: str | None = None) -> ServerException:
    with pytest.raises(ServerException) as info:
        call()
    err = info.value
    assert (err.http_status, err.error_code) == (status, code), f"expected {status} {code}, got {err}"
    if message is not None:
        assert err.message == message, err
    assert UUID_UPPER.match(err.request_id or ""), err.request_id
    return err


# Request builders for the current SDK, so tests read as the calls they make.


def command(client: LiveClient, domain: str, app: str, stream: str, cmd: str | None):
    return client.real_time_record_command(
        live_models.RealTimeRecordCommandRequest(
            domain_name=domain, app_name=app, stream_name=stream, command=cmd, region_id=REGION
        )
    )


def add_config(client: LiveClient, domain: str, app: str, formats: list[dict], stream: str | None = None,
               bucket: str = "rec", endpoint: str = "oss-cn-shanghai.aliyuncs.com", **fields):
    """AddLiveAppRecordConfig; `formats` items use the wire names (Format, CycleDuration …);
    `fields` the SDK's snake_case names (on_demand, delay_time, start_time …)."""
    return client.add_live_app_record_config(
        live_models.AddLiveAppRecordConfigRequest(
            domain_name=domain,
            app_name=app,
            stream_name=stream,
            oss_bucket=bucket,
            oss_endpoint=endpoint,
            record_format=[live_models.AddLiveAppRecordConfigRequestRecordFormat().from_map(f) for f in formats],
            **fields,
        )
    )


def manual_config(client: LiveClient, domain: str, app: str = "live", delay: int = 15,
                  formats: list[dict] | None = None, bucket: str = "rec", stream: str | None = None):
    """A manual (OnDemand=7) config recording MP4 unless told otherwise."""
    return add_config(client, domain, app, formats or [{"Format": "mp4"}], stream=stream, bucket=bucket,
                      on_demand=7, delay_time=delay)


def describe_configs(client: LiveClient, domain: str, **fields):
    return client.describe_live_record_config(
        live_models.DescribeLiveRecordConfigRequest(domain_name=domain, **fields)
    )


# ---------------------------------------------------------------------------------------------
# Publishing


class Publisher:
    """ffmpeg publishing the asset in real time (`-re -c copy`), looping unless told otherwise,
    and reporting how far it has sent through `-progress`."""

    def __init__(self, url: str, asset: Path = ASSET, loop: bool = True):
        self.url = url
        cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-re"]
        if loop:
            cmd += ["-stream_loop", "-1"]
        cmd += ["-i", str(asset), "-c", "copy", "-f", "flv",
                "-progress", "pipe:1", "-stats_period", str(PROGRESS_PERIOD_SECS), url]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self._position = 0.0
        self._lock = threading.Lock()
        self._stderr: list[bytes] = []
        self._reader = threading.Thread(target=self._read_progress, daemon=True)
        self._reader.start()
        self._err_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._err_reader.start()

    def _read_progress(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").strip()
            if line.startswith("out_time_us="):
                try:
                    value = int(line.split("=", 1)[1]) / 1e6
                except ValueError:
                    continue  # "N/A" before the first packet
                with self._lock:
                    self._position = max(self._position, value)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self._stderr.append(raw)

    @property
    def position(self) -> float:
        """Media seconds sent so far (by ffmpeg's last progress report)."""
        with self._lock:
            return self._position

    def stderr(self) -> str:
        return b"".join(self._stderr).decode(errors="replace")

    def wait_position(self, at_least: float, timeout: float = 30.0) -> float:
        deadline = time.monotonic() + timeout
        while (pos := self.position) < at_least:
            if self.proc.poll() is not None:
                raise AssertionError(f"publisher exited ({self.proc.returncode}) at {pos:.2f} s: {self.stderr()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"publisher at {pos:.2f} s, not {at_least} s, after {timeout} s")
            time.sleep(0.01)
        return pos

    def wait_mid_gop(self, after: float, timeout: float = 30.0) -> float:
        """Waits until the position is past `after` and in the middle of a GOP (0.35–0.65 s
        past a keyframe), so a command's pre-roll keyframe is unambiguous; returns it."""
        deadline = time.monotonic() + timeout
        self.wait_position(after, timeout)
        while True:
            pos = self.position
            if 0.35 <= pos % GOP_SECS <= 0.65:
                return pos
            if time.monotonic() > deadline:
                raise AssertionError(f"no mid-GOP position after {after} s within {timeout} s")
            time.sleep(0.005)

    def stop(self) -> None:
        """Ends the publish the way an encoder does on SIGTERM (ffmpeg closes the stream)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def wait(self, timeout: float = 60.0) -> int:
        return self.proc.wait(timeout)


# ---------------------------------------------------------------------------------------------
# Files: packets, probes, decodes


@dataclass
class Packet:
    dts: int
    pts: int
    size: int
    md5: str


@dataclass
class Packets:
    video: list[Packet] = field(default_factory=list)
    audio: list[Packet] = field(default_factory=list)
    video_tb: float = 0.0  # seconds per tick
    audio_tb: float = 0.0


def packets(path: Path) -> Packets:
    """Every packet of the first video and audio stream, in file order, with its MD5."""
    out = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", str(path),
         "-map", "0:v:0", "-map", "0:a:0?", "-c", "copy", "-f", "framemd5", "-"],
        capture_output=True, check=False,
    )
    assert out.returncode == 0, f"framemd5 of {path} failed: {out.stderr.decode(errors='replace')}"
    result = Packets()
    for line in out.stdout.decode().splitlines():
        if line.startswith("#tb "):
            idx, tb = line[4:].split(":", 1)
            num, den = tb.strip().split("/")
            if idx.strip() == "0":
                result.video_tb = int(num) / int(den)
            else:
                result.audio_tb = int(num) / int(den)
            continue
        if line.startswith("#") or not line.strip():
            continue
        stream, dts, pts, _duration, size, md5 = [f.strip() for f in line.split(",")]
        target = result.video if stream == "0" else result.audio
        target.append(Packet(int(dts), int(pts), int(size), md5))
    return result


@dataclass
class Source:
    """The published asset, indexed: position of every packet's MD5 and the keyframes."""

    video: list[str]
    audio: list[str]
    video_index: dict[str, int]
    audio_index: dict[str, int]
    keyframes: set[int]

    def video_positions(self, pkts: list[Packet], what: str) -> list[int]:
        missing = [i for i, p in enumerate(pkts) if p.md5 not in self.video_index]
        assert not missing, f"{what}: video packets {missing[:5]} are not packets of the published asset"
        return [self.video_index[p.md5] for p in pkts]

    def audio_positions(self, pkts: list[Packet], what: str) -> list[int]:
        missing = [i for i, p in enumerate(pkts) if p.md5 not in self.audio_index]
        assert not missing, f"{what}: audio packets {missing[:5]} are not packets of the published asset"
        return [self.audio_index[p.md5] for p in pkts]

    def video_secs(self, index: int) -> float:
        """Media time of a video frame within one pass of the asset (decode order = index)."""
        return index / FPS


@lru_cache(maxsize=1)
def source() -> Source:
    pk = packets(require_asset())
    flags = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=flags",
         "-of", "csv=p=0", str(ASSET)],
        capture_output=True, check=True,
    ).stdout.decode().split()
    video = [p.md5 for p in pk.video]
    audio = [p.md5 for p in pk.audio]
    assert len(set(video)) == len(video) and len(set(audio)) == len(audio), "asset packets must be unique"
    assert len(flags) == len(video)
    return Source(
        video=video,
        audio=audio,
        video_index={h: i for i, h in enumerate(video)},
        audio_index={h: i for i, h in enumerate(audio)},
        keyframes={i for i, f in enumerate(flags) if f.startswith("K")},
    )


def runs(positions: list[int], period: int) -> list[list[int]]:
    """Splits asset positions into runs of consecutive packets (wrapping at the loop)."""
    out: list[list[int]] = []
    for p in positions:
        if out and p == (out[-1][-1] + 1) % period:
            out[-1].append(p)
        else:
            out.append([p])
    return out


def wrap_diff(a: float, b: float, period: float) -> float:
    """a − b on a circle of `period` seconds, in (−period/2, period/2]."""
    d = (a - b) % period
    return d - period if d > period / 2 else d


def decode_errors(path: Path) -> str:
    """What `ffmpeg -v error` says while decoding the whole file (empty = clean)."""
    out = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True, check=False,
    )
    text = out.stderr.decode(errors="replace").strip()
    return text if text or out.returncode == 0 else f"exit code {out.returncode}"


def assert_decodes_cleanly(path: Path) -> None:
    errors = decode_errors(path)
    assert errors == "", f"decoding {path} reported:\n{errors}"


@dataclass
class Probe:
    duration: float
    codecs: list[str]
    video_frames: int
    audio_frames: int
    first_video_frame_is_key: bool


def probe(path: Path) -> Probe:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_entries",
         "format=duration:stream=codec_name,codec_type,nb_read_frames", "-of", "json", str(path)],
        capture_output=True, check=False,
    )
    assert out.returncode == 0, f"ffprobe {path}: {out.stderr.decode(errors='replace')}"
    data = json.loads(out.stdout)
    p = Probe(float(data.get("format", {}).get("duration", 0) or 0), [], 0, 0, False)
    for s in data.get("streams", []):
        p.codecs.append(s.get("codec_name", ""))
        n = int(s.get("nb_read_frames", 0) or 0)
        if s.get("codec_type") == "video":
            p.video_frames = n
        elif s.get("codec_type") == "audio":
            p.audio_frames = n
    first = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=key_frame",
         "-read_intervals", "%+#1", "-of", "csv=p=0", str(path)],
        capture_output=True, check=False,
    ).stdout.decode().strip()
    p.first_video_frame_is_key = first.startswith("1")
    return p


def assert_valid_recording(path: Path) -> Probe:
    """An H.264/AAC recording that starts with a keyframe and decodes without a word."""
    p = probe(path)
    assert p.codecs == ["h264", "aac"], f"{path}: {p.codecs}"
    assert p.first_video_frame_is_key, f"{path} does not start with a keyframe"
    assert_decodes_cleanly(path)
    return p


def max_video_step_secs(pk: Packets) -> float:
    """The largest DTS step between consecutive video packets: a bridged pause leaves none
    longer than a frame or two."""
    dts = [p.dts for p in pk.video]
    steps = [b - a for a, b in zip(dts, dts[1:])]
    return max(steps, default=0) * pk.video_tb
