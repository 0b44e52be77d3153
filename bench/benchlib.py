"""Measurement helpers for the recording benchmark (stdlib only; Linux /proc).

Adapted from the reference harness (../shared/bench/bench_record.py): a server's cost is the
utime+stime and RSS of its whole process tree (e.g. nginx master + worker, socat + its forks),
sampled from /proc; write() calls come from /proc/PID/io (syscw, per thread group).
"""

import json
import os
import socket
import subprocess
import time

TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# How long the quiet check looks at the whole machine per try (s).
QUIET_PROBE_S = 2.0


def read_stat(pid):
    """(ppid, utime+stime ticks, rss bytes) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    # the command name may hold spaces and parentheses: split after its last ')'
    rest = s[s.rindex(")") + 2:].split()
    # rest[1]=ppid(4) utime(14)=rest[11] stime(15)=rest[12] rss(24)=rest[21]
    return int(rest[1]), int(rest[11]) + int(rest[12]), int(rest[21]) * PAGE


def all_procs():
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = read_stat(int(d))
            if st:
                out[int(d)] = st
    return out


def tree(root, procs):
    """PIDs of root and all its descendants."""
    kids = {}
    for pid, (ppid, _, _) in procs.items():
        kids.setdefault(ppid, []).append(pid)
    res, todo = [], [root]
    while todo:
        p = todo.pop()
        if p in procs:
            res.append(p)
            todo.extend(kids.get(p, []))
    return res


def sys_cpu():
    """(busy ticks, total ticks) over all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v[:8]) - idle, sum(v[:8])


def busy_percent(seconds):
    """Busy share of all CPUs (0-100) over `seconds`."""
    b0, t0 = sys_cpu()
    time.sleep(seconds)
    b1, t1 = sys_cpu()
    return (b1 - b0) / max(1, t1 - t0) * 100


def wait_quiet(max_wait, threshold):
    """Waits up to max_wait s until the machine is below threshold % busy (of all cores).
    Returns (seconds waited, last busy %, reached)."""
    start = time.time()
    busy = None
    while True:
        busy = busy_percent(QUIET_PROBE_S)
        if busy < threshold:
            return round(time.time() - start, 1), round(busy, 1), True
        if time.time() - start >= max_wait:
            return round(time.time() - start, 1), round(busy, 1), False


def read_io(pid):
    """(syscw, wchar) from /proc/PID/io, or None (needs the same uid or root)."""
    try:
        with open(f"/proc/{pid}/io") as f:
            d = dict(line.split(": ") for line in f.read().splitlines())
        return int(d["syscw"]), int(d["wchar"])
    except (OSError, ValueError, KeyError):
        return None


def ctx_switches(pid):
    """Voluntary + involuntary context switches of all threads of a process, or None. A thread
    that sleeps and is woken costs one: the price of waking tasks across threads."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except (OSError, ValueError):
            pass
    return total


class Counter:
    """Per-PID counter deltas, robust to processes appearing or vanishing inside the window:
    a PID first seen after the baseline counts from 0 (it started inside the window)."""

    def __init__(self):
        self.first, self.last = {}, {}

    def update(self, values, baseline=False):
        for pid, v in values.items():
            if pid not in self.first:
                self.first[pid] = v if baseline else 0
            self.last[pid] = v

    def total(self):
        return sum(self.last[p] - self.first[p] for p in self.last)


def list_files(path, exts=None, skip_dirs=()):
    """{path: size} of the files under path (with one of exts, if given)."""
    out = {}
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if d not in skip_dirs]
        for fn in files:
            if exts and not fn.endswith(exts):
                continue
            p = os.path.join(root, fn)
            try:
                out[p] = os.stat(p).st_size
            except OSError:
                pass
    return out


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=15.0, proc=None):
    end = time.time() + timeout
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def run(args, timeout=300):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


def asset_facts(path):
    """Duration, total bitrate and the largest GOP (all packets from one video keyframe to the
    next) of an asset: the GOP is what a GOP cache holds at most."""
    r = run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path])
    duration = float(r.stdout.strip())
    size = os.path.getsize(path)
    r = run(["ffprobe", "-v", "error", "-show_entries", "packet=codec_type,size,flags",
             "-of", "csv=p=0", path])
    gops, cur, started = [], 0, False
    for line in r.stdout.splitlines():
        parts = line.split(",")
        if len(parts) < 3:
            continue
        kind, psize, flags = parts[0], parts[1], parts[2]
        if kind == "video" and "K" in flags:
            if started:
                gops.append(cur)
            cur, started = 0, True
        if started and psize.isdigit():
            cur += int(psize)
    return {"duration_s": duration, "bytes": size, "mbps": size * 8 / duration / 1e6,
            "bytes_per_s": size / duration, "max_gop_bytes": max(gops) if gops else 0,
            "gops": len(gops)}


def probe(path):
    """Streams, durations (from first/last packet timestamps: recorders' FLV headers often lack
    a duration) and any ffprobe errors of a recorded file."""
    r = run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name:format=duration",
             "-of", "json", path])
    try:
        info = json.loads(r.stdout or "{}")
    except ValueError:
        info = {}
    streams = [f"{s.get('codec_type')}:{s.get('codec_name')}" for s in info.get("streams", [])]
    r = run(["ffprobe", "-v", "error", "-show_entries", "packet=pts_time,codec_type", "-of", "csv=p=0", path])
    ts = {}
    for line in r.stdout.splitlines():
        parts = line.split(",")
        if len(parts) == 2 and parts[1] not in ("N/A", ""):
            ts.setdefault(parts[0], []).append(float(parts[1]))
    return {"file": os.path.basename(path), "path": path, "size": os.path.getsize(path),
            "streams": streams, "format_duration": info.get("format", {}).get("duration"),
            "packet_span_s": {k: round(max(v) - min(v), 2) for k, v in ts.items()},
            "packets": {k: len(v) for k, v in ts.items()},
            "probe_errors": r.stderr.strip()[:300]}


def decode_errors(path):
    """Lines ffmpeg prints while fully decoding the file (0 = decodes cleanly)."""
    r = run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", path, "-f", "null", "-"])
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    return len(lines) + (0 if r.returncode == 0 else 1), "\n".join(lines[:3])[:300]
