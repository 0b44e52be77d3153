#!/usr/bin/env python3
"""Recording to S3 vs. recording to a local directory, in one run (issue 9).

N publishers (ffmpeg -re -stream_loop -1 -c copy of a ~2 Mbps asset) record HLS with short
segments, so segments are uploaded continually while the streams run. Phase "local" records into
a local bucket, phase "s3" into a moto_server bucket on loopback; everything else is the same.
Per phase: liverec's CPU and RSS per stream, and (s3) the upload backlog sampled every second from
the catalog: it must stay flat (the uploader keeps up) and drain after the streams stop. Prints the
s3/local ratios.

Run through bench/run-s3.sh (builds liverec in release, makes the assets, finds moto_server).
"""

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.request

import benchlib as bl

HERE = os.path.dirname(os.path.abspath(__file__))
DELAY_S = 3
DRAIN_TIMEOUT_S = 300


def start(args, log, env=None):
    f = open(log, "wb")
    return subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)


def stop(p, sig=signal.SIGTERM, timeout=60):
    if p.poll() is not None:
        return 0.0
    t0 = time.time()
    try:
        os.killpg(p.pid, sig)
    except ProcessLookupError:
        return 0.0
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    return time.time() - t0


def backlog(db):
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        n = con.execute("SELECT COUNT(*) FROM uploads WHERE done = FALSE").fetchone()[0]
        con.close()
        return n
    except sqlite3.Error:
        return None


def slope(points):
    """Least-squares slope of (t, v) points, per second."""
    pts = [(t, v) for t, v in points if v is not None]
    if len(pts) < 3:
        return None
    mt = statistics.mean(t for t, _ in pts)
    mv = statistics.mean(v for _, v in pts)
    den = sum((t - mt) ** 2 for t, _ in pts)
    return sum((t - mt) * (v - mv) for t, v in pts) / den if den else None


def phase(name, a, moto_endpoint, work, procs):
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    data = os.path.join(d, "data")
    rtmp, api = bl.free_port(), bl.free_port()
    bucket = "bench"
    conf = (f'data_dir = "{data}"\nrtmp_listen = "127.0.0.1:{rtmp}"\napi_listen = "127.0.0.1:{api}"\n'
            "shutdown_timeout_secs = 120\n[ingest]\nmax_publishers = 10000\n"
            f'[record]\ndelay_secs = {DELAY_S}\nbucket = "{bucket}"\n'
            f'formats = [{{ format = "m3u8", slice_secs = {a.slice}, cycle_secs = 21600 }}]\n')
    if name == "s3":
        conf += (f'[buckets.{bucket}]\ntype = "s3"\nendpoint = "{moto_endpoint}"\nbucket = "{a.s3_bucket}"\n'
                 'region = "us-east-1"\naccess_key_id = "bench"\nsecret_access_key = "bench"\n')
    with open(os.path.join(d, "liverec.toml"), "w") as f:
        f.write(conf)
    srv = start([a.liverec, "serve", "--config", os.path.join(d, "liverec.toml")],
                os.path.join(d, "server.log"))
    procs.append(srv)
    if not bl.wait_port(rtmp, proc=srv):
        raise RuntimeError(f"liverec ({name}) did not start; see {d}/server.log")
    time.sleep(1)
    p = bl.all_procs()
    rss_idle = sum(p[x][2] for x in bl.tree(srv.pid, p))
    pubs = []
    for i in range(a.streams):
        pubs.append(start(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
                           "-stream_loop", "-1", "-i", a.asset, "-c", "copy", "-f", "flv",
                           f"rtmp://127.0.0.1:{rtmp}/live/s{i}"], os.path.join(d, f"pub-{i}.log")))
        time.sleep(0.05)
    procs.extend(pubs)
    time.sleep(a.warmup)
    db = os.path.join(data, "liverec.db")
    samples = []  # (t, cpu ticks, rss, backlog)
    t0 = time.time()
    while True:
        now = bl.all_procs()
        st = bl.tree(srv.pid, now)
        samples.append((round(time.time() - t0, 1), sum(now[x][1] for x in st),
                        sum(now[x][2] for x in st), backlog(db) if name == "s3" else None))
        if time.time() - t0 >= a.seconds:
            break
        time.sleep(1)
    win = samples[-1][0] - samples[0][0]
    failed = sum(1 for q in pubs if q.poll() is not None)
    for q in pubs:
        stop(q, timeout=5)
    res = {"phase": name, "streams": a.streams, "window_s": win, "publisher_failures": failed,
           "cpu_percent": round((samples[-1][1] - samples[0][1]) / bl.TCK / win * 100, 2),
           "rss_idle_bytes": rss_idle, "rss_end_bytes": samples[-1][2],
           "rss_max_bytes": max(s[2] for s in samples)}
    res["cpu_percent_per_stream"] = round(res["cpu_percent"] / a.streams, 4)
    res["rss_per_stream_bytes"] = round((res["rss_end_bytes"] - rss_idle) / a.streams)
    if name == "s3":
        pts = [(t, b) for t, _, _, b in samples]
        half = pts[len(pts) // 2:]
        vals = [b for _, b in pts if b is not None]
        res.update(backlog_min=min(vals, default=None), backlog_max=max(vals, default=None),
                   backlog_last=vals[-1] if vals else None,
                   backlog_slope_per_min_second_half=None if slope(half) is None else round(slope(half) * 60, 2),
                   backlog_timeline=[(t, b) for t, b in pts[::max(1, len(pts) // 20)]])
        # The streams stopped: after DelayTime the playlists are finalized; time until every
        # upload is confirmed.
        t_stop = time.time()
        while time.time() - t_stop < DRAIN_TIMEOUT_S:
            time.sleep(1)
            if time.time() - t_stop > DELAY_S + 2 and backlog(db) == 0:
                break
        res["drain_after_stop_s"] = round(time.time() - t_stop, 1)
        res["backlog_after_drain"] = backlog(db)
    else:
        time.sleep(DELAY_S + 2)
    res["stop_s"] = round(stop(srv, timeout=150), 2)
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        res["indexed_playlists"] = con.execute("SELECT COUNT(*) FROM recordings").fetchone()[0]
        res["indexed_objects"] = con.execute("SELECT COUNT(*) FROM recording_objects").fetchone()[0]
        con.close()
    except sqlite3.Error as e:
        res["indexed_playlists"] = f"error: {e}"
    spool = os.path.join(data, "buckets", "bench", ".spool")
    res["left_in_spool"] = len([f for f in os.listdir(spool) if not f.endswith(".json")]) \
        if os.path.isdir(spool) else 0
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", "-n", type=int, default=40)
    ap.add_argument("--seconds", "-t", type=float, default=60)
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--slice", type=int, default=4, help="HLS segment seconds")
    ap.add_argument("--asset", required=True)
    ap.add_argument("--liverec", required=True)
    ap.add_argument("--moto", required=True, help="path of moto_server")
    ap.add_argument("--s3-bucket", default="liverec-bench")
    ap.add_argument("--work-dir", required=True)
    ap.add_argument("--out", help="append the JSON result here")
    a = ap.parse_args()
    procs = []

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(signum)

    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    try:
        port = bl.free_port()
        moto = start([a.moto, "-H", "127.0.0.1", "-p", str(port)], os.path.join(a.work_dir, "moto.log"))
        procs.append(moto)
        if not bl.wait_port(port, proc=moto):
            sys.exit("moto_server did not start")
        endpoint = f"http://127.0.0.1:{port}"
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/{a.s3_bucket}", method="PUT"), timeout=10)
        results = {}
        for name in ("local", "s3"):
            print(f"[{time.strftime('%H:%M:%S')}] {name}: {a.streams} streams, {a.seconds:.0f} s",
                  file=sys.stderr, flush=True)
            results[name] = phase(name, a, endpoint, a.work_dir, procs)
            print(json.dumps(results[name]), file=sys.stderr, flush=True)
        p = bl.all_procs()
        moto_rss = sum(p[x][2] for x in bl.tree(moto.pid, p)) if moto.poll() is None else None
    finally:
        for q in reversed(procs):
            stop(q, timeout=10)
    loc, s3 = results["local"], results["s3"]

    def r(k):
        return round(s3[k] / loc[k], 2) if loc.get(k) else None

    summary = {"streams": a.streams, "seconds": a.seconds, "slice_s": a.slice,
               "cpu_per_stream_s3_over_local": r("cpu_percent_per_stream"),
               "rss_per_stream_s3_over_local": r("rss_per_stream_bytes"),
               "moto_rss_bytes": moto_rss, "local": loc, "s3": s3}
    print(f"""
S3 vs local, {a.streams} streams x {os.path.basename(a.asset)}, HLS {a.slice} s segments, {a.seconds:.0f} s window
                         local        s3     s3/local
CPU % per stream      {loc['cpu_percent_per_stream']:8.3f}  {s3['cpu_percent_per_stream']:8.3f}  {summary['cpu_per_stream_s3_over_local']}
RSS KiB per stream    {loc['rss_per_stream_bytes'] / 1024:8.0f}  {s3['rss_per_stream_bytes'] / 1024:8.0f}  {summary['rss_per_stream_s3_over_local']}
RSS max MiB           {loc['rss_max_bytes'] / 2**20:8.1f}  {s3['rss_max_bytes'] / 2**20:8.1f}
publisher failures    {loc['publisher_failures']:8d}  {s3['publisher_failures']:8d}
upload backlog: min {s3['backlog_min']}, max {s3['backlog_max']}, last {s3['backlog_last']}, slope over the second half {s3['backlog_slope_per_min_second_half']}/min
drained {s3['drain_after_stop_s']} s after the streams stopped (backlog then {s3['backlog_after_drain']}); left in spool: local {loc['left_in_spool']}, s3 {s3['left_in_spool']}
indexed playlists: local {loc['indexed_playlists']}, s3 {s3['indexed_playlists']}""")
    if a.out:
        with open(a.out, "a") as f:
            f.write(json.dumps(summary) + "\n")


if __name__ == "__main__":
    main()
