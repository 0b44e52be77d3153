"""Viewers benchmark (issue 13, point 6), liverec vs nginx-rtmp in one run on one machine.

One 2 Mbit/s stream (the looping `hi` asset, `ffmpeg -re -c copy`) is published to each server
in turn. After a quiet baseline with the publisher alone, the load generator
(`liverec-loadgen viewers`, one process) plays it: liverec with --rtmp RTMP viewers and --http
HTTP-FLV viewers, nginx-rtmp with --rtmp + --http RTMP viewers (it has no HTTP-FLV). Each
server's CPU (utime+stime of its process tree) is measured over the watching window and its
peak RSS sampled; per viewer = (with viewers - baseline) / viewers. Recording is off on both, so
only serving viewers is measured. The last line printed is JSON.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import benchlib  # noqa: E402


def tree_usage(pid):
    """(cpu ticks, rss bytes) of pid's process tree."""
    procs = benchlib.all_procs()
    pids = benchlib.tree(pid, procs)
    return sum(procs[p][1] for p in pids), sum(procs[p][2] for p in pids)


def measure(pid, seconds):
    """CPU % of one core and peak RSS (KiB) of pid's tree over `seconds`."""
    t0 = time.monotonic()
    c0, rss = tree_usage(pid)
    peak = rss
    while time.monotonic() - t0 < seconds:
        time.sleep(0.5)
        _, rss = tree_usage(pid)
        peak = max(peak, rss)
    c1, rss = tree_usage(pid)
    peak = max(peak, rss)
    elapsed = time.monotonic() - t0
    return 100.0 * (c1 - c0) / benchlib.TCK / elapsed, peak // 1024


def start_liverec(args, work):
    rtmp, api = benchlib.free_port(), benchlib.free_port()
    conf = os.path.join(work, "liverec.toml")
    with open(conf, "w") as f:
        f.write(f'rtmp_listen = "127.0.0.1:{rtmp}"\napi_listen = "127.0.0.1:{api}"\n'
                f'data_dir = "{work}/data"\n[record]\nenabled = false\n'
                f'[ingest]\nmax_viewers = 10000\n')
    log = open(os.path.join(work, "liverec.log"), "w")
    p = subprocess.Popen([args.liverec, "serve", "--config", conf], stdout=log, stderr=log,
                         start_new_session=True)
    benchlib.wait_port(rtmp, proc=p)
    benchlib.wait_port(api, proc=p)
    return p, rtmp, api


def start_nginx(args, work):
    port = benchlib.free_port()
    with open(os.path.join(HERE, "nginx-rtmp.conf.in")) as f:
        conf = (f.read().replace("@PORT@", str(port)).replace("@PREFIX@", work)
                .replace("@RECORD_DIR@", work).replace("@RECORD@", "record off;")
                .replace("worker_connections 4096", "worker_connections 8192"))
    path = os.path.join(work, "nginx.conf")
    with open(path, "w") as f:
        f.write(conf)
    p = subprocess.Popen([args.nginx, "-p", work + "/", "-e", os.path.join(work, "error.log"),
                          "-c", path, "-g", "daemon off;"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    benchlib.wait_port(port, proc=p)
    return p, port


def publish(args, url):
    return subprocess.Popen(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-re",
                             "-stream_loop", "-1", "-i", args.asset, "-c", "copy", "-f", "flv",
                             url], stdout=subprocess.DEVNULL, start_new_session=True)


def stop(p):
    if p and p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=15)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def run_server(name, args, server, rtmp_url, http_url, rtmp_n, http_n):
    pub = publish(args, rtmp_url)
    try:
        time.sleep(3)
        base_cpu, base_rss = measure(server.pid, args.baseline)
        cmd = [args.loadgen, "viewers", "--seconds", str(args.seconds),
               "--ramp-seconds", str(args.ramp), "--rtmp", rtmp_url,
               "--rtmp-count", str(rtmp_n)]
        if http_n:
            cmd += ["--http", http_url, "--http-count", str(http_n)]
        gen = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, start_new_session=True)
        gen_start = time.monotonic()
        time.sleep(args.ramp + 2)
        cpu, rss = measure(server.pid, args.seconds - 4)
        gen_ticks, _ = tree_usage(gen.pid)
        gen_cpu = round(100.0 * gen_ticks / benchlib.TCK / (time.monotonic() - gen_start), 2)
        out, _ = gen.communicate(timeout=args.seconds + args.ramp + 60)
        report = json.loads(out.strip().splitlines()[-1])
    finally:
        stop(pub)
    n = rtmp_n + http_n
    return {
        "viewers": n,
        "baseline_cpu_pct": round(base_cpu, 2),
        "cpu_pct": round(cpu, 2),
        "cpu_pct_per_viewer": round((cpu - base_cpu) / n, 4),
        "baseline_rss_kib": base_rss,
        "rss_kib": rss,
        "rss_kib_per_viewer": round((rss - base_rss) / n, 1),
        "loadgen": report,
        "loadgen_cpu_pct": gen_cpu,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rtmp", type=int, default=200, help="RTMP viewers of liverec")
    ap.add_argument("--http", type=int, default=200, help="HTTP-FLV viewers of liverec")
    ap.add_argument("--seconds", type=float, default=40.0)
    ap.add_argument("--ramp", type=float, default=10.0)
    ap.add_argument("--baseline", type=float, default=10.0)
    ap.add_argument("--asset", required=True)
    ap.add_argument("--liverec", default=os.path.join(ROOT, "target/debug/liverec"))
    ap.add_argument("--loadgen", default=os.path.join(ROOT, "target/debug/liverec-loadgen"))
    ap.add_argument("--nginx", default="nginx")
    args = ap.parse_args()

    results = {}
    with tempfile.TemporaryDirectory(prefix="liverec-viewers-") as work:
        lw = os.path.join(work, "liverec")
        os.makedirs(lw)
        server, rtmp, api = start_liverec(args, lw)
        try:
            results["liverec"] = run_server(
                "liverec", args, server, f"rtmp://127.0.0.1:{rtmp}/live/s",
                f"http://127.0.0.1:{api}/live/s.flv", args.rtmp, args.http)
        finally:
            stop(server)
        nw = os.path.join(work, "nginx")
        os.makedirs(nw)
        server, port = start_nginx(args, nw)
        try:
            results["nginx-rtmp"] = run_server(
                "nginx-rtmp", args, server, f"rtmp://127.0.0.1:{port}/live/s", None,
                args.rtmp + args.http, 0)
        finally:
            stop(server)

    lr, ng = results["liverec"], results["nginx-rtmp"]
    for name, r in results.items():
        lg = r["loadgen"]
        print(f"{name}: {r['viewers']} viewers, CPU {r['cpu_pct']} % of a core "
              f"(baseline {r['baseline_cpu_pct']} %) = {r['cpu_pct_per_viewer']} % per viewer; "
              f"RSS {r['rss_kib']} KiB (baseline {r['baseline_rss_kib']}) = "
              f"{r['rss_kib_per_viewer']} KiB per viewer; viewers to the end: "
              + ", ".join(f"{k} {v['whole']}/{v['connected'] + v['failed']} "
                          f"(median {v['bytes_median'] // 1024} KiB)" for k, v in lg.items()
                          if v["connected"] + v["failed"]))
    if ng["cpu_pct_per_viewer"] > 0:
        results["ratio_cpu_per_viewer"] = round(lr["cpu_pct_per_viewer"] / ng["cpu_pct_per_viewer"], 3)
    if ng["rss_kib_per_viewer"] > 0:
        results["ratio_rss_per_viewer"] = round(lr["rss_kib_per_viewer"] / ng["rss_kib_per_viewer"], 3)
    print(f"ratios liverec / nginx-rtmp per viewer: CPU {results.get('ratio_cpu_per_viewer')}, "
          f"RSS {results.get('ratio_rss_per_viewer')}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
