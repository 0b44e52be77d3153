#!/usr/bin/env python3
"""Callback latency: from a recording file being complete to its callback reaching the receiver.

N streams publish for a few seconds, then every publisher is stopped at once, so N recordings
end and N files complete within about a second. A local HTTP receiver notes when each callback
arrives (before answering, after `--receiver-delay` seconds per request).

- liverec: a notify config for the domain (AddLiveRecordNotifyConfig through bench/api's signed
  client), automatic MP4 recording with DelayTime 1 s; "complete" = the index row's created_at
  (the file is at its final name and indexed in the same step, the callback queued with it).
- nginx-rtmp (Debian's libnginx-mod-rtmp, the reference): `record all` with
  `on_record_done`; "complete" = the final file's mtime (nginx closes the file, then calls).
  nginx-rtmp sends each callback once, without retries or a concurrency bound.

Prints a JSON document; run_notify.sh prints the table. Stops everything it started.
"""
import argparse, json, os, signal, sqlite3, subprocess, sys, threading, time, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from command_to_file import Api, DOMAIN, log, spawn, stop_all, wait_port  # noqa: E402


class Receiver:
    """Notes each POST's arrival time and body, then answers 200 after `delay` seconds."""

    def __init__(self, delay):
        self.arrivals = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                t = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.lock:
                    outer.arrivals.append((t, body.decode(errors="replace")))
                time.sleep(delay)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        ThreadingHTTPServer.request_queue_size = 1024
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/cb"

    def snapshot(self):
        with self.lock:
            return list(self.arrivals)

    def close(self):
        self.http.shutdown()
        self.http.server_close()


def publishers(asset, urls):
    return [spawn(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1",
                   "-i", asset, "-c", "copy", "-f", "flv", url],
                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for url in urls]


def stop_publishers(procs):
    """SIGTERM to all at once (ffmpeg closes its streams), then wait."""
    dead = sum(p.poll() is not None for p in procs)
    if dead:
        raise SystemExit(f"{dead} of {len(procs)} publishers exited before the end (asset missing? server full?)")
    t = time.time()
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return t


def percentile(values, q):
    v = sorted(values)
    if not v:
        return None
    i = min(len(v) - 1, max(0, int(round(q / 100 * len(v) + 0.5)) - 1))
    return v[i]


def stats(latencies_s, completes):
    ms = [x * 1e3 for x in latencies_s]
    out = {"n": len(ms)}
    if ms:
        out.update(p50_ms=round(percentile(ms, 50), 1), p99_ms=round(percentile(ms, 99), 1),
                   max_ms=round(max(ms), 1), min_ms=round(min(ms), 1))
    if completes:
        out["files_completed_within_ms"] = round((max(completes) - min(completes)) * 1e3, 1)
    return out


def wait_for(receiver, n, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if len(receiver.snapshot()) >= n:
            return True
        time.sleep(0.1)
    return False


def run_liverec(a, work, receiver_delay, per_domain):
    rtmp_port, api_port = a.rtmp_port, a.api_port
    data = os.path.join(work, "data")
    with open(os.path.join(work, "liverec.toml"), "w") as f:
        f.write(f'data_dir = "{data}"\nrtmp_listen = "127.0.0.1:{rtmp_port}"\napi_listen = "127.0.0.1:{api_port}"\n'
                f'[record]\ndelay_secs = 1\nformats = [{{ format = "mp4" }}]\n'
                f'[notify]\nper_domain_concurrency = {per_domain}\n')
    receiver = Receiver(receiver_delay)
    log_f = open(os.path.join(work, "liverec.log"), "w")
    server = spawn([a.liverec, "serve", "--config", os.path.join(work, "liverec.toml")], stderr=log_f, stdout=log_f)
    try:
        if not (wait_port(api_port) and wait_port(rtmp_port)):
            raise SystemExit("liverec did not start (see liverec.log)")
        r = Api(a.apibench, api_port).call("AddLiveRecordNotifyConfig", DomainName=DOMAIN, NotifyUrl=receiver.url)
        if r.get("outcome") != "OK":
            raise SystemExit(f"AddLiveRecordNotifyConfig: {r}")
        pubs = publishers(a.asset, [f"rtmp://127.0.0.1:{rtmp_port}/live/s{i}" for i in range(a.streams)])
        time.sleep(a.publish_secs)
        stop_publishers(pubs)
        complete = wait_for(receiver, a.streams, a.timeout)
        arrivals = {json.loads(body)["uri"]: t for t, body in receiver.snapshot() if body.startswith("{")}
        db = sqlite3.connect(f"file:{os.path.join(data, 'liverec.db')}?mode=ro", uri=True)
        rows = db.execute("select oss_object, created_at from recordings where domain = ?", (DOMAIN,)).fetchall()
        db.close()
        created = {obj: ms / 1e3 for obj, ms in rows}
        lat = [arrivals[o] - created[o] for o in created if o in arrivals]
        res = stats(lat, list(created.values()))
        res.update(files=len(created), callbacks=len(arrivals), all_arrived=complete)
        return res
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        receiver.close()


def nginx_conf(work, rtmp_port, rec_dir, callback):
    os.makedirs(os.path.join(work, "nginx", "logs"), exist_ok=True)
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
worker_processes 1;
user nobody nogroup;
pid {work}/nginx/nginx.pid;
error_log {work}/nginx/logs/error.log warn;
events {{ worker_connections 4096; }}
rtmp {{
    server {{
        listen 127.0.0.1:{rtmp_port};
        chunk_size 4096;
        application live {{
            live on;
            record all;
            record_path {rec_dir};
            record_unique on;
            on_record_done {callback};
        }}
    }}
}}
""")
    return conf


def run_nginx(a, work, receiver_delay):
    rec_dir = os.path.join(work, "nginx-rec")
    os.makedirs(rec_dir, exist_ok=True)
    os.chmod(rec_dir, 0o1777)
    # nginx's worker runs as nobody: every directory above the recordings must let it through.
    os.chmod(work, 0o755)
    os.chmod(a.work, 0o755)
    receiver = Receiver(receiver_delay)
    conf = nginx_conf(work, a.nginx_rtmp_port, rec_dir, receiver.url)
    server = spawn(["nginx", "-p", os.path.join(work, "nginx"), "-c", conf, "-g", "daemon off;"])
    try:
        if not wait_port(a.nginx_rtmp_port):
            raise SystemExit("nginx did not start (see its error.log)")
        pubs = publishers(a.asset, [f"rtmp://127.0.0.1:{a.nginx_rtmp_port}/live/s{i}" for i in range(a.streams)])
        time.sleep(a.publish_secs)
        stop_publishers(pubs)
        complete = wait_for(receiver, a.streams, a.timeout)
        lat, completes = [], []
        for t, body in receiver.snapshot():
            path = urllib.parse.parse_qs(body).get("path", [""])[0]
            if path and os.path.exists(path):
                mtime = os.stat(path).st_mtime_ns / 1e9
                completes.append(mtime)
                lat.append(t - mtime)
        res = stats(lat, completes)
        res.update(files=len(completes), callbacks=len(receiver.snapshot()), all_arrived=complete)
        return res
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        receiver.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--liverec", required=True)
    ap.add_argument("--apibench", required=True)
    ap.add_argument("--asset", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--streams", type=int, default=100)
    ap.add_argument("--publish-secs", type=float, default=8.0)
    ap.add_argument("--timeout", type=float, default=180.0, help="longest wait for every callback, s")
    ap.add_argument("--rtmp-port", type=int, default=19362)
    ap.add_argument("--api-port", type=int, default=18092)
    ap.add_argument("--nginx-rtmp-port", type=int, default=19363)
    a = ap.parse_args()

    def on_signal(sig, _frame):
        raise SystemExit(128 + sig)
    signal.signal(signal.SIGTERM, on_signal)

    cases = [("liverec", "fast receiver", 0.0, 8), ("nginx-rtmp", "fast receiver", 0.0, None),
             ("liverec", "receiver taking 1 s", 1.0, 8), ("liverec", "receiver taking 1 s, per_domain_concurrency 64", 1.0, 64),
             ("nginx-rtmp", "receiver taking 1 s", 1.0, None)]
    results = []
    try:
        for i, (server, case, delay, per_domain) in enumerate(cases):
            work = os.path.join(a.work, f"case{i}")
            os.makedirs(work)
            log(f"{server}, {case}: {a.streams} streams for {a.publish_secs} s, then all stopped at once")
            if server == "liverec":
                r = run_liverec(a, work, delay, per_domain)
            else:
                r = run_nginx(a, work, delay)
            r.update(server=server, case=case)
            log(json.dumps(r))
            results.append(r)
    finally:
        stop_all()
    print(json.dumps({"streams": a.streams, "publish_secs": a.publish_secs, "results": results}, indent=1))


if __name__ == "__main__":
    main()
