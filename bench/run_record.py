#!/usr/bin/env python3
"""Recording benchmark, liverec vs nginx-rtmp (issue 5), in one run on one machine.

For each server in turn (a bare socat read loop, nginx-rtmp with `record all`, liverec recording
MP4), on its own port and temp directory: wait for a quiet machine, start the server, measure its
idle RSS, start N ffmpeg publishers (`-re -stream_loop -1 -c copy`), warm up, measure a window of T
seconds (CPU and RSS of the server's process tree from /proc, write() calls from /proc/PID/io,
growth of the recorded files), stop the publishers, stop the server (liverec finalizes its MP4s on
SIGTERM), then count and check the files (ffprobe + a full decode of a sample). Prints a table, the
ratios liverec / nginx-rtmp and the targets of issue 5 point 4; appends JSON lines to --out.

Every process it starts runs in its own session and is stopped on exit, including on SIGINT and
SIGTERM; their process-group ids are also written to WORK/pids for run-record.sh's trap.
Normally started by run-record.sh, which makes the assets and builds liverec first.
"""

import argparse
import datetime
import json
import os
import random
import re
import shlex
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time

import benchlib as bl

HERE = os.path.dirname(os.path.abspath(__file__))

# Seconds a server gets to exit after SIGTERM before SIGKILL (liverec finalizes every file first).
STOP_TIMEOUT_S = 180
# Seconds publishers get to exit after SIGTERM.
PUBLISHER_STOP_TIMEOUT_S = 5
# liverec's shutdown budget for finalizing; well under STOP_TIMEOUT_S.
LIVEREC_SHUTDOWN_TIMEOUT_S = 120
# liverec's DelayTime: longer than the whole run, so it is SIGTERM that finalizes.
LIVEREC_DELAY_S = 600
# A recorded file is valid if its video span is within this much of what its publisher sent
# (the publisher's first second may precede the server's publish handling; the tail may miss
# what was in flight when it stopped).
SPAN_SLACK_BEFORE_S = 3.0
SPAN_SLACK_AFTER_S = 1.0
# RSS target of issue 5: the GOP cache plus this much per stream.
RSS_TARGET_EXTRA_BYTES = 256 * 1024
# Media files (recordings and liverec's spool files; not its sidecars or database).
MEDIA_EXTS = (".flv", ".mp4", ".m3u8", ".ts", ".m4s")
# Seconds an --attach'ed profiler gets to write its output after SIGINT.
ATTACH_STOP_TIMEOUT_S = 60
# Seconds to wait after the publishers stop before nginx's files are read (it closes them then).
NGINX_SETTLE_S = 1.0


class Aborted(Exception):
    """SIGINT/SIGTERM/SIGHUP arrived: stop everything and exit."""


def on_signal(signum, _frame):
    raise Aborted(signal.Signals(signum).name)


class Procs:
    """Every child process, each in its own session; stopped on exit."""

    def __init__(self, pidfile):
        self.pidfile = pidfile
        self.live = []

    def start(self, args, log_path, env=None):
        log = open(log_path, "ab")
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                             start_new_session=True, env=env)
        log.close()
        self.live.append(p)
        with open(self.pidfile, "a") as f:
            f.write(f"{p.pid}\n")
        return p

    def forget_exited(self):
        """Drops exited children, also from the pid file (so the shell trap never signals a
        recycled pid)."""
        self.live = [p for p in self.live if p.poll() is None]
        with open(self.pidfile, "w") as f:
            f.write("".join(f"{p.pid}\n" for p in self.live))

    @staticmethod
    def stop(p, sig=signal.SIGTERM, timeout=10.0):
        """Signals p's process group, waits, then kills the group. Returns seconds to exit."""
        t0 = time.time()
        if p.poll() is None:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(p.pid, signal.SIGKILL)  # leftovers of the group (nginx workers, forks)
        except (ProcessLookupError, PermissionError):
            pass
        if p.poll() is None:
            p.wait()
        return time.time() - t0

    def stop_all(self):
        for p in self.live:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.time() + PUBLISHER_STOP_TIMEOUT_S
        for p in self.live:
            try:
                p.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.forget_exited()


# ------------------------------------------------------------------------------------- servers
class Server:
    """How to start one server, publish to it and find what it recorded."""

    name = ""
    records = True
    sample_ext = (".flv", ".mp4")

    def __init__(self, work, a):
        self.dir = os.path.join(work, self.name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = bl.free_port()
        self.a = a

    def command(self):
        raise NotImplementedError

    def env(self):
        """Environment of the server process (None: inherit)."""
        return None

    def url(self, i):
        return f"rtmp://127.0.0.1:{self.port}/live/s{i}"

    def publish_format(self):
        return "flv"

    def record_dir(self):
        return os.path.join(self.dir, "rec")

    def final_files(self):
        """Finished recordings after the server stopped: {path: size}."""
        return bl.list_files(self.record_dir(), MEDIA_EXTS)

    def stop_signal(self):
        return signal.SIGTERM

    def extra_checks(self, res):
        pass


class Socat(Server):
    """The bare read loop: what receiving the bytes costs, with no protocol and no recording."""

    name = "socat"
    records = False

    def command(self):
        return ["socat", "-u", f"TCP-LISTEN:{self.port},bind=127.0.0.1,fork,reuseaddr,backlog=1024",
                "OPEN:/dev/null"]

    def url(self, i):
        return f"tcp://127.0.0.1:{self.port}"


class Nginx(Server):
    name = "nginx-rtmp"

    def __init__(self, work, a, record=True):
        if not record:
            self.name = "nginx-norec"
            self.records = False
        super().__init__(work, a)
        os.makedirs(self.record_dir(), exist_ok=True)
        os.chmod(self.record_dir(), 0o1777)  # the worker runs as nobody
        os.chmod(self.dir, 0o755)
        with open(os.path.join(HERE, "nginx-rtmp.conf.in")) as f:
            conf = f.read()
        conf = (conf.replace("@PORT@", str(self.port)).replace("@PREFIX@", self.dir)
                .replace("@RECORD_DIR@", self.record_dir())
                .replace("@RECORD@", "record all;" if record else "record off;"))
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)

    def command(self):
        return [self.a.nginx, "-p", self.dir + "/", "-e", os.path.join(self.dir, "error.log"),
                "-c", self.conf, "-g", "daemon off;"]


class Liverec(Server):
    name = "liverec"
    sample_ext = (".mp4",)

    def __init__(self, work, a, record=True):
        if not record:
            self.name = "liverec-norec"
            self.records = False
        super().__init__(work, a)
        self.api_port = bl.free_port()
        self.conf = os.path.join(self.dir, "liverec.toml")
        with open(self.conf, "w") as f:
            f.write(
                f'data_dir = "{self.record_dir()}"\n'
                f'rtmp_listen = "127.0.0.1:{self.port}"\n'
                f'api_listen = "127.0.0.1:{self.api_port}"\n'
                f"shutdown_timeout_secs = {LIVEREC_SHUTDOWN_TIMEOUT_S}\n"
                "[ingest]\nmax_publishers = 10000\n"
                f"[record]\nenabled = {'true' if record else 'false'}\nmode = \"automatic\"\n"
                f"delay_secs = {LIVEREC_DELAY_S}\n"
                'formats = [{ format = "mp4" }]\n')

    def command(self):
        return [self.a.liverec, "serve", "--config", self.conf]

    def env(self):
        if not self.a.liverec_env:
            return None
        env = dict(os.environ)
        env.update(kv.split("=", 1) for kv in self.a.liverec_env)
        return env

    def final_files(self):
        return bl.list_files(os.path.join(self.record_dir(), "buckets"), MEDIA_EXTS,
                             skip_dirs=(".spool",))

    def extra_checks(self, res):
        spool = [p for p in bl.list_files(self.record_dir(), MEDIA_EXTS) if "/.spool/" in p]
        res["left_in_spool"] = len(spool)
        try:
            db = sqlite3.connect(f"file:{os.path.join(self.record_dir(), 'liverec.db')}?mode=ro",
                                 uri=True)
            res["indexed_recordings"] = db.execute("SELECT count(*) FROM recordings").fetchone()[0]
            db.close()
        except sqlite3.Error as e:
            res["indexed_recordings"] = f"error: {e}"


# ------------------------------------------------------------------------------------- one phase
def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


def measure(server, a, asset, procs, round_no):
    """Runs one server through the whole procedure; returns its result dict."""
    res = {"server": server.name, "round": round_no, "streams": a.streams, "asset": a.asset,
           "asset_mbps": round(asset["mbps"], 3), "port": server.port}
    waited, busy, quiet = bl.wait_quiet(a.wait_quiet, a.quiet_threshold) if a.wait_quiet > 0 \
        else (0.0, round(bl.busy_percent(bl.QUIET_PROBE_S), 1), None)
    res.update(waited_for_quiet_s=waited, busy_before_percent=busy, quiet_reached=quiet,
               loadavg_before=loadavg())

    srv_log = os.path.join(server.dir, "server.log")
    srv = procs.start(server.command(), srv_log, env=server.env())
    if not bl.wait_port(server.port, proc=srv):
        Procs.stop(srv)
        with open(srv_log, errors="replace") as f:
            tail = f.read()[-2000:]
        raise RuntimeError(f"{server.name} did not start listening on {server.port}:\n{tail}")
    time.sleep(a.idle_settle)
    p = bl.all_procs()
    res["rss_idle_bytes"] = sum(p[x][2] for x in bl.tree(srv.pid, p))

    pubs = []
    for i in range(a.streams):
        args = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1",
                "-i", a.asset_path, "-c", "copy", "-f", server.publish_format(), server.url(i)]
        pubs.append((procs.start(args, os.path.join(server.dir, f"pub-{i}.log")), time.time()))
        time.sleep(a.stagger)
    pub_pids = {q.pid for q, _ in pubs}
    time.sleep(a.warmup)

    cpu, pub_cpu, syscw, wchar = bl.Counter(), bl.Counter(), bl.Counter(), bl.Counter()
    ctxsw = bl.Counter()
    samples = []

    def sample(baseline=False):
        procs_now = bl.all_procs()
        st = bl.tree(srv.pid, procs_now)
        cpu.update({x: procs_now[x][1] for x in st}, baseline)
        pub_cpu.update({x: procs_now[x][1] for x in pub_pids if x in procs_now}, baseline)
        io = {x: bl.read_io(x) for x in st}
        syscw.update({x: v[0] for x, v in io.items() if v}, baseline)
        wchar.update({x: v[1] for x, v in io.items() if v}, baseline)
        cs = {x: bl.ctx_switches(x) for x in st}
        ctxsw.update({x: v for x, v in cs.items() if v is not None}, baseline)
        samples.append((sum(procs_now[x][2] for x in st),
                        sum(procs_now[x][2] for x in pub_pids if x in procs_now),
                        round(time.time() - w0, 1)))

    rec_dir = server.record_dir()
    rec0 = sum(bl.list_files(rec_dir, MEDIA_EXTS).values()) if server.records else 0
    attached = None
    if a.attach and server.name in a.attach_to.split(","):
        now = bl.all_procs()
        pids = ",".join(str(x) for x in sorted(bl.tree(srv.pid, now)))
        cmd = [x.replace("{pids}", pids).replace("{pid}", str(srv.pid)).replace("{server}", server.name)
               for x in shlex.split(a.attach)]
        attached = procs.start(cmd, os.path.join(a.work_dir, f"attach-{server.name}-{round_no}.log"))
        res["attached"] = a.attach
    sb0, st0 = bl.sys_cpu()
    w0 = time.time()
    sample(baseline=True)
    while time.time() - w0 < a.seconds:
        time.sleep(max(0.0, min(a.interval, a.seconds - (time.time() - w0))))
        sample()
    win = time.time() - w0
    sb1, st1 = bl.sys_cpu()
    if attached is not None:
        # SIGINT: strace -c prints its summary, perf record writes its data
        Procs.stop(attached, signal.SIGINT, ATTACH_STOP_TIMEOUT_S)
    rec1 = sum(bl.list_files(rec_dir, MEDIA_EXTS).values()) if server.records else 0

    failed = []
    for i, (q, _) in enumerate(pubs):
        if q.poll() is not None:
            with open(os.path.join(server.dir, f"pub-{i}.log"), errors="replace") as f:
                failed.append({"i": i, "rc": q.returncode, "err": f.read()[-300:]})
    t_stop = time.time()
    for q, _ in pubs:
        if q.poll() is None:
            try:
                os.killpg(q.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for q, _ in pubs:
        Procs.stop(q, timeout=PUBLISHER_STOP_TIMEOUT_S)
    published_s = [t_stop - t0 for _, t0 in pubs]
    procs.forget_exited()

    ncpu = os.cpu_count() or 1
    server_cpu = cpu.total() / bl.TCK / win * 100
    pubs_cpu = pub_cpu.total() / bl.TCK / win * 100
    sys_busy = (sb1 - sb0) / max(1, st1 - st0) * 100 * ncpu
    rss_end = samples[-1][0]
    expected_bps = asset["bytes_per_s"] * a.streams
    res.update({
        "window_s": round(win, 2), "server_procs": len(cpu.last),
        "server_cpu_percent": round(server_cpu, 3),
        "cpu_percent_per_stream": round(server_cpu / a.streams, 4),
        "rss_bytes": rss_end, "rss_max_bytes": max(s[0] for s in samples),
        "rss_per_stream_bytes": round((rss_end - res["rss_idle_bytes"]) / a.streams),
        # growth inside the window: a leak or a buffer that keeps growing shows here
        "rss_growth_per_stream_bytes": round((rss_end - samples[0][0]) / a.streams),
        # (seconds into the window, server RSS in KiB), about 20 points
        "rss_timeline_kib": [(t, round(r / 1024)) for r, _, t in samples[::max(1, len(samples) // 20)]],
        "write_calls_per_s": round(syscw.total() / win, 1),
        "write_calls_per_s_per_stream": round(syscw.total() / win / a.streams, 2),
        "bytes_per_write": round(wchar.total() / max(1, syscw.total())),
        "ctx_switches_per_s": round(ctxsw.total() / win, 1),
        "ctx_switches_per_s_per_stream": round(ctxsw.total() / win / a.streams, 2),
        "ingest_bytes_per_s": round(expected_bps),
        "recorded_bytes_in_window": rec1 - rec0,
        "recorded_vs_ingested_window": round((rec1 - rec0) / win / expected_bps, 3) if server.records else None,
        "publishers_cpu_percent": round(pubs_cpu, 2),
        "publisher_cpu_percent_per_stream": round(pubs_cpu / a.streams, 3),
        "system_cpu_percent": round(sys_busy, 1),
        "other_cpu_percent": round(sys_busy - server_cpu - pubs_cpu, 1),
        "saturated": sys_busy > 0.9 * 100 * ncpu,
        "publisher_failures": len(failed), "publisher_failure_detail": failed[:3],
        "loadavg_after": loadavg(),
    })

    if server.name.startswith("nginx"):
        time.sleep(NGINX_SETTLE_S)
    t_term = time.time()
    res["stop_s"] = round(Procs.stop(srv, server.stop_signal(), STOP_TIMEOUT_S), 2)
    res["server_exit_code"] = srv.returncode
    procs.forget_exited()
    if server.records:
        verify(server, a, asset, res, published_s, t_term)
    if not a.keep:
        shutil.rmtree(rec_dir, ignore_errors=True)
    return res


def verify(server, a, asset, res, published_s, t_term):
    files = server.final_files()
    res["files"] = len(files)
    res["files_expected"] = a.streams
    total = sum(files.values())
    res["recorded_bytes_total"] = total
    res["recorded_vs_ingested_total"] = round(total / (asset["bytes_per_s"] * sum(published_s)), 3)
    server.extra_checks(res)
    random.seed(1)
    playable = sorted(p for p in files if p.endswith(server.sample_ext))
    sample = random.sample(playable, min(a.verify_sample, len(playable)))
    names = sorted(((f"s{i}", i) for i in range(a.streams)), key=lambda x: -len(x[0]))
    checks, ok = [], 0
    for path in sample:
        c = bl.probe(path)
        parts = path.split(os.sep)
        idx = next((i for n, i in names if any(re.match(re.escape(n) + r"(\D|$)", q) for q in parts)), None)
        exp = [published_s[idx]] if idx is not None else [min(published_s), max(published_s)]
        c["expected_s"] = [round(x, 1) for x in exp]
        c["decode_errors"], c["decode_detail"] = bl.decode_errors(path) if a.decode else (0, "")
        kinds = {s.split(":")[0] for s in c["streams"]}
        vspan = c["packet_span_s"].get("video", 0)
        c["ok"] = bool({"video", "audio"} <= kinds
                       and min(exp) - SPAN_SLACK_BEFORE_S <= vspan <= max(exp) + SPAN_SLACK_AFTER_S
                       and c["decode_errors"] == 0 and not c["probe_errors"])
        ok += c["ok"]
        checks.append(c)
    res["sample_checked"] = len(checks)
    res["sample_ok"] = ok
    res["sample_detail"] = checks
    res["files_valid"] = bool(len(files) == a.streams and ok == len(checks) and checks)


# ------------------------------------------------------------------------------------- report
def median(values):
    v = [x for x in values if isinstance(x, (int, float)) and not isinstance(x, bool)]
    return statistics.median(v) if v else None


def summarize(runs):
    """Median of every numeric field over the rounds of one server."""
    out = dict(runs[-1])
    for k in runs[0]:
        m = median([r.get(k) for r in runs])
        if m is not None:
            out[k] = m
    out["rounds"] = len(runs)
    return out


def fmt(v, spec="{:.3f}"):
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, (int, float)):
        return spec.format(v)
    return str(v)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def report(summ, a, asset, runs):
    names = list(summ)
    rows = [
        ("publishers failed", "publisher_failures", "{:.0f}"),
        ("server CPU, % of one core", "server_cpu_percent", "{:.2f}"),
        ("CPU % per stream", "cpu_percent_per_stream", "{:.4f}"),
        ("RSS idle, MiB", "rss_idle_bytes", "MiB"),
        ("RSS loaded, MiB", "rss_bytes", "MiB"),
        ("RSS per stream, KiB", "rss_per_stream_bytes", "KiB"),
        ("RSS growth in window/stream, KiB", "rss_growth_per_stream_bytes", "KiB"),
        ("recorded/ingested (window)", "recorded_vs_ingested_window", "{:.3f}"),
        ("recorded/ingested (files)", "recorded_vs_ingested_total", "{:.3f}"),
        ("write() calls/s", "write_calls_per_s", "{:.0f}"),
        ("write() calls/s per stream", "write_calls_per_s_per_stream", "{:.1f}"),
        ("bytes per write()", "bytes_per_write", "{:.0f}"),
        ("context switches/s per stream", "ctx_switches_per_s_per_stream", "{:.1f}"),
        ("files / expected", "files", "{:.0f}"),
        ("sampled files ok", "sample_ok", "{:.0f}"),
        ("files valid", "files_valid", None),
        ("left in spool (liverec)", "left_in_spool", "{:.0f}"),
        ("rows in recordings index", "indexed_recordings", "{:.0f}"),
        ("stop (SIGTERM→exit), s", "stop_s", "{:.2f}"),
        ("publisher CPU % per stream", "publisher_cpu_percent_per_stream", "{:.3f}"),
        ("other CPU on box, % core", "other_cpu_percent", "{:.1f}"),
        ("busy before start, % all", "busy_before_percent", "{:.1f}"),
    ]
    w0 = max(len(r[0]) for r in rows) + 2
    w = max(12, max(len(n) for n in names) + 2)
    lines = [f"{'':{w0}}" + "".join(f"{n:>{w}}" for n in names)]
    for label, key, spec in rows:
        cells = []
        for n in names:
            v = summ[n].get(key)
            if spec == "MiB" and v is not None:
                v = f"{v / 2**20:.1f}"
            elif spec == "KiB" and v is not None:
                v = f"{v / 1024:.0f}"
            elif key == "files" and v is not None:
                v = f"{v}/{summ[n].get('files_expected')}"
            elif key == "sample_ok" and v is not None:
                v = f"{v}/{summ[n].get('sample_checked')}"
            else:
                v = fmt(v, spec or "{}")
            cells.append(f"{v:>{w}}")
        lines.append(f"{label:{w0}}" + "".join(cells))
    out = ["", f"== {a.streams} streams x {a.asset} ({asset['mbps']:.2f} Mbps), window {a.seconds:g} s, "
                f"{a.rounds} round(s){' (medians)' if a.rounds > 1 else ''} =="] + lines

    lr, ng, so = summ.get("liverec"), summ.get("nginx-rtmp"), summ.get("socat")
    out.append("")
    targets = {}
    if lr and ng:
        out.append("ratios liverec / nginx-rtmp:")
        for label, key in [("CPU per stream", "cpu_percent_per_stream"),
                           ("RSS per stream", "rss_per_stream_bytes"),
                           ("write() calls/s", "write_calls_per_s"),
                           ("recorded bytes (window)", "recorded_vs_ingested_window"),
                           ("recorded bytes (files)", "recorded_vs_ingested_total")]:
            out.append(f"  {label:28}{fmt(ratio(lr.get(key), ng.get(key)), '{:.2f}'):>8}")
        if a.rounds > 1:
            per = [ratio(x["cpu_percent_per_stream"], y["cpu_percent_per_stream"])
                   for x, y in zip(runs["liverec"], runs["nginx-rtmp"])]
            out.append("  CPU per stream, each round   " + "  ".join(fmt(x, "{:.2f}") for x in per))
        r = ratio(lr["cpu_percent_per_stream"], ng["cpu_percent_per_stream"])
        targets["cpu_per_stream_le_nginx"] = (r is not None and r <= 1.0, r)
    if lr and ng and so:
        lo = lr["cpu_percent_per_stream"] - so["cpu_percent_per_stream"]
        no = ng["cpu_percent_per_stream"] - so["cpu_percent_per_stream"]
        out.append(f"  recording overhead over socat, % per stream: liverec {lo:+.4f}, nginx-rtmp {no:+.4f}, "
                   f"ratio {fmt(ratio(lo, no) if no > 0 else None, '{:.2f}')}")
        targets["overhead_le_half_nginx"] = (no > 0 and lo <= no / 2, ratio(lo, no) if no > 0 else None)
    if lr:
        limit = asset["max_gop_bytes"] + RSS_TARGET_EXTRA_BYTES
        targets["rss_per_stream_le_gop_plus_256k"] = (lr["rss_per_stream_bytes"] <= limit,
                                                      f"{lr['rss_per_stream_bytes'] / 1024:.0f} KiB vs "
                                                      f"{limit / 1024:.0f} KiB")
        targets["files_valid"] = (bool(lr.get("files_valid")), f"{lr.get('files')}/{a.streams} files, "
                                  f"{lr.get('sample_ok')}/{lr.get('sample_checked')} sampled ok")
    if targets:
        out.append("targets (issue 5 point 4):")
        for k, (ok, detail) in targets.items():
            d = fmt(detail, "{:.2f}") if not isinstance(detail, str) else detail
            out.append(f"  {k:34}{'PASS' if ok else 'FAIL':>6}  ({d})")
    noisy = [n for n in names if not summ[n].get("quiet_reached", True) or summ[n].get("saturated")]
    if noisy:
        out.append(f"warning: machine not quiet or saturated during: {', '.join(noisy)} "
                   "(see other_cpu_percent in the JSON)")
    return "\n".join(out), targets


# ------------------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", "-n", type=int, default=20)
    ap.add_argument("--seconds", "-t", type=float, default=30, help="measured window (s)")
    ap.add_argument("--asset", choices=("hi", "lo"), default="hi")
    ap.add_argument("--assets-dir", default="/tmp/liverec-bench-assets")
    ap.add_argument("--wait-quiet", type=float, default=0,
                    help="before each server, wait up to this many s for a quiet machine")
    ap.add_argument("--quiet-threshold", type=float, default=15, help="busy %% of all cores")
    ap.add_argument("--servers", default="socat,nginx-rtmp,liverec",
                    help="comma list of socat, nginx-rtmp, nginx-norec, liverec, liverec-norec "
                         "(run in this order)")
    ap.add_argument("--rounds", type=int, default=1, help="repeat the servers; report medians")
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--stagger", type=float, default=0.05, help="s between publisher starts")
    ap.add_argument("--interval", type=float, default=1.0, help="sampling interval (s)")
    ap.add_argument("--idle-settle", type=float, default=1.0, help="s after start before idle RSS")
    ap.add_argument("--verify-sample", type=int, default=3)
    ap.add_argument("--no-decode", dest="decode", action="store_false", help="skip full decodes")
    ap.add_argument("--liverec", default=os.path.join(os.path.dirname(HERE), "target/release/liverec"))
    ap.add_argument("--liverec-env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra environment for liverec (e.g. MALLOC_ARENA_MAX=1); repeatable")
    ap.add_argument("--attach", metavar="CMD",
                    help="profiling only (skews the CPU numbers): run CMD during the measured window of "
                         "the --attach-to servers, {pid} = server pid, {pids} = its process tree "
                         "(comma list), {server} = its name; stopped with "
                         "SIGINT, output in the work dir (use --keep), e.g. 'strace -c -f -p {pid}'")
    ap.add_argument("--attach-to", default="liverec", help="comma list of servers --attach applies to")
    ap.add_argument("--nginx", default="nginx")
    ap.add_argument("--work-dir", required=True)
    ap.add_argument("--keep", action="store_true", help="keep recordings and logs")
    ap.add_argument("--out", help="append JSON lines (one per server run, one summary) here")
    a = ap.parse_args()
    a.asset_path = os.path.join(a.assets_dir, f"{a.asset}.flv")
    if a.streams < 1 or a.seconds <= 0 or a.rounds < 1:
        sys.exit("--streams, --seconds and --rounds must be positive")
    if any("=" not in kv for kv in a.liverec_env):
        sys.exit("--liverec-env takes KEY=VALUE")

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    os.chmod(a.work_dir, 0o755)  # nginx's worker (nobody) must reach its record directory
    procs = Procs(os.path.join(a.work_dir, "pids"))
    asset = bl.asset_facts(a.asset_path)
    kinds = {"socat": Socat, "nginx-rtmp": Nginx, "liverec": Liverec,
             "nginx-norec": lambda w, x: Nginx(w, x, record=False),
             "liverec-norec": lambda w, x: Liverec(w, x, record=False)}
    names = [s.strip() for s in a.servers.split(",") if s.strip()]
    bad = [n for n in names if n not in kinds]
    if bad:
        sys.exit(f"unknown server(s): {bad}")
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    runs = {n: [] for n in names}
    try:
        for r in range(a.rounds):
            for n in names:
                work = os.path.join(a.work_dir, f"round{r}")
                print(f"[{time.strftime('%H:%M:%S')}] round {r + 1}/{a.rounds}: {n}, {a.streams} x {a.asset}",
                      file=sys.stderr, flush=True)
                res = measure(kinds[n](work, a), a, asset, procs, r)
                print(f"    CPU {res['server_cpu_percent']:.2f} % ({res['cpu_percent_per_stream']:.4f} %/stream), "
                      f"RSS/stream {res['rss_per_stream_bytes'] / 1024:.0f} KiB, "
                      f"writes/s {res['write_calls_per_s']:.0f}, failed publishers {res['publisher_failures']}, "
                      f"other CPU {res['other_cpu_percent']:.1f} %", file=sys.stderr, flush=True)
                runs[n].append(res)
                if a.out:
                    with open(a.out, "a") as f:
                        f.write(json.dumps(res) + "\n")
    except Aborted as e:
        print(f"aborted by {e}; stopping every process started", file=sys.stderr)
        procs.stop_all()
        sys.exit(130)
    except (RuntimeError, OSError) as e:
        print(f"benchmark failed: {e}", file=sys.stderr)
        procs.stop_all()
        sys.exit(1)
    finally:
        procs.stop_all()
    summ = {n: summarize(v) for n, v in runs.items()}
    text, targets = report(summ, a, asset, runs)
    print(text)
    if a.out:
        with open(a.out, "a") as f:
            f.write(json.dumps({"summary": True, "started": started, "args": {
                k: v for k, v in vars(a).items() if k not in ("work_dir",)},
                "asset_facts": asset, "servers": summ,
                "targets": {k: v[0] for k, v in targets.items()}}) + "\n")


if __name__ == "__main__":
    main()
