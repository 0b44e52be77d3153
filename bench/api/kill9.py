#!/usr/bin/env python3
"""kill -9 rounds (issue 11, point 2), run by bench/run-kill9.sh.

N streams publish (`ffmpeg -re -stream_loop -1 -c copy`) to liverec recording MP4 and M3U8
(automatic mode, a notify config pointing at a local receiver). At a random moment of each
round the server gets SIGKILL; the publishers are killed with it and the server restarts, which
finalizes what the crash left (crash recovery), and the next round publishes again. After the
last round the server starts once more, waits for every callback, and stops cleanly.

Then it checks, and exits non-zero if any check fails:
- every MP4 and playlist in the bucket decodes with zero errors
  (`ffmpeg -v error -i F -fps_mode passthrough -enc_time_base:v 1:90000 -f null -`);
- every round recorded every stream in every format, indexed exactly once (one row per
  stream, round and format; one row per stored file and one stored file per row);
- every index row got its file callback, and every attempt of one file's callback carried the
  same Idempotency-Key (repeats are counted: at least once, not exactly once);
- nothing is left in the spool.
It reports the largest loss it saw: the kill's wall time minus the end of the recording the
crash cut (start_time + duration of its index row), per format; and each restart's recovery time
(the server's own `recovery finished` log line).

The reference, nginx-rtmp (Debian's libnginx-mod-rtmp, `record all` FLV with
`on_record_done`), gets one round of the same: its process group is killed with SIGKILL while
the same streams publish; what it left is counted (files, files that decode without error,
callbacks received). nginx-rtmp has no recovery step: its files stay as the kill left them.

Prints a JSON document; run-kill9.sh prints the summary. Stops everything it started.
"""
import argparse, concurrent.futures, glob, json, os, random, re, signal, sqlite3, subprocess, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from command_to_file import Api, DOMAIN, log, spawn, stop_all, wait_port  # noqa: E402
from notify_latency import nginx_conf  # noqa: E402

FORMATS = ("mp4", "m3u8")
RECOVERY_RE = re.compile(r"recovery finished.*?recovered=(\d+).*?elapsed_ms=(\d+)")


class Receiver:
    """Answers every callback with 200 and keeps (arrival, Idempotency-Key, body)."""

    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.lock:
                    outer.calls.append((time.time(), self.headers.get("Idempotency-Key"), body.decode(errors="replace")))
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

    def file_callbacks(self):
        """uri -> set of Idempotency-Keys, and the number of deliveries, of file callbacks."""
        keys, deliveries = {}, 0
        with self.lock:
            calls = list(self.calls)
        for _, key, body in calls:
            try:
                doc = json.loads(body)
            except ValueError:
                continue
            if "uri" in doc and "event" not in doc:
                keys.setdefault(doc["uri"], set()).add(key)
                deliveries += 1
        return keys, deliveries

    def close(self):
        self.http.shutdown()
        self.http.server_close()


class Server:
    def __init__(self, a, work):
        self.a, self.work = a, work
        self.data = os.path.join(work, "data")
        self.config = os.path.join(work, "liverec.toml")
        self.log_path = os.path.join(work, "liverec.log")
        with open(self.config, "w") as f:
            f.write(f'data_dir = "{self.data}"\nrtmp_listen = "127.0.0.1:{a.rtmp_port}"\n'
                    f'api_listen = "127.0.0.1:{a.api_port}"\n'
                    f'[record]\ndelay_secs = 1\nformats = [{{ format = "mp4" }}, '
                    f'{{ format = "m3u8", slice_secs = {a.slice_secs} }}]\n')
        self.proc = None
        self.starts = 0

    def start(self):
        self.log_offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        log_f = open(self.log_path, "a")
        self.proc = spawn([self.a.liverec, "serve", "--config", self.config], stdout=log_f, stderr=log_f)
        self.starts += 1
        if not (wait_port(self.a.api_port, 120) and wait_port(self.a.rtmp_port, 120)):
            raise SystemExit(f"liverec did not start (see {self.log_path})")

    def recovery(self):
        """(recovered, elapsed ms) from this start's log line."""
        end = time.time() + 30
        while time.time() < end:
            with open(self.log_path, errors="replace") as f:
                f.seek(self.log_offset)
                m = RECOVERY_RE.search(f.read())
            if m:
                return int(m.group(1)), int(m.group(2))
            time.sleep(0.1)
        raise SystemExit("no 'recovery finished' line in the log after a start")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise SystemExit("liverec did not stop within 120 s of SIGTERM")

    def rows(self):
        db = sqlite3.connect(f"file:{os.path.join(self.data, 'liverec.db')}?mode=ro", uri=True)
        try:
            return db.execute("select record_id, app, stream, format, oss_bucket, oss_object, start_time, end_time "
                              "from recordings where domain = ?", (DOMAIN,)).fetchall()
        finally:
            db.close()


def publish(a, round_no):
    return [spawn(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1",
                   "-i", a.asset, "-c", "copy", "-f", "flv", f"rtmp://127.0.0.1:{a.rtmp_port}/live/r{round_no}s{i}"],
                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for i in range(a.streams)]


def kill_all(procs):
    for p in procs:
        if p.poll() is None:
            p.kill()
    for p in procs:
        p.wait()


def decode_errors(path):
    r = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", path, "-fps_mode", "passthrough",
                        "-enc_time_base:v", "1:90000", "-f", "null", "-"], capture_output=True, text=True)
    err = r.stderr.strip()
    return None if r.returncode == 0 and not err else (err or f"exit {r.returncode}")[:400]


def run_nginx(a, work, hold):
    """One kill -9 round of nginx-rtmp: files left, decode errors, callbacks received."""
    rec_dir = os.path.join(work, "nginx-rec")
    os.makedirs(rec_dir, exist_ok=True)
    os.chmod(rec_dir, 0o1777)
    # nginx's worker runs as nobody: every directory above the recordings must let it through.
    os.chmod(work, 0o755)
    os.chmod(a.work, 0o755)
    receiver = Receiver()
    conf = nginx_conf(work, a.nginx_rtmp_port, rec_dir, receiver.url)
    server = spawn(["nginx", "-p", os.path.join(work, "nginx"), "-c", conf, "-g", "daemon off;"])
    try:
        if not wait_port(a.nginx_rtmp_port):
            raise SystemExit("nginx did not start (see its error.log)")
        pubs = [spawn(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1",
                       "-i", a.asset, "-c", "copy", "-f", "flv", f"rtmp://127.0.0.1:{a.nginx_rtmp_port}/live/s{i}"],
                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for i in range(a.streams)]
        time.sleep(hold)
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        kill_all(pubs)
        time.sleep(2)  # a callback already on its way would arrive now
        files = sorted(glob.glob(os.path.join(rec_dir, "*.flv")))
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
            errors = sum(1 for e in pool.map(decode_errors, files) if e)
        with receiver.lock:
            callbacks = len(receiver.calls)
        return {"streams": a.streams, "hold_s": round(hold, 2), "files": len(files),
                "files_with_decode_errors": errors, "callbacks": callbacks}
    finally:
        receiver.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--liverec", required=True)
    ap.add_argument("--apibench", required=True)
    ap.add_argument("--asset", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--streams", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--min-secs", type=float, default=4.0, help="shortest publish before the kill")
    ap.add_argument("--max-secs", type=float, default=20.0, help="longest publish before the kill")
    ap.add_argument("--slice-secs", type=int, default=6)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--timeout", type=float, default=300.0, help="longest wait for every callback, s")
    ap.add_argument("--rtmp-port", type=int, default=19372)
    ap.add_argument("--api-port", type=int, default=18102)
    ap.add_argument("--nginx-rtmp-port", type=int, default=19373)
    ap.add_argument("--no-reference", action="store_true", help="skip the nginx-rtmp round")
    ap.add_argument("--max-loss", type=float, default=2.0,
                    help="a recording that lost more than this at a kill (s) fails the run "
                         "(the promise: the 1 s flush interval, plus the publisher's own buffering)")
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    receiver = Receiver()
    server = Server(a, a.work)
    failures, rounds, recoveries = [], [], []
    try:
        server.start()
        server.recovery()
        r = Api(a.apibench, a.api_port).call("AddLiveRecordNotifyConfig", DomainName=DOMAIN, NotifyUrl=receiver.url)
        if r.get("outcome") != "OK":
            raise SystemExit(f"AddLiveRecordNotifyConfig: {r}")
        for n in range(a.rounds):
            pubs = publish(a, n)
            started = time.time()
            hold = rng.uniform(a.min_secs, a.max_secs)
            time.sleep(hold)
            dead = sum(p.poll() is not None for p in pubs)
            killed_at = time.time()
            server.kill9()
            kill_all(pubs)
            if dead:
                failures.append(f"round {n}: {dead} publishers had exited before the kill")
            log(f"round {n + 1}/{a.rounds}: killed after {hold:.1f} s")
            rounds.append({"round": n, "published_at": started, "killed_at": killed_at, "hold_s": round(hold, 2)})
            server.start()
            recovered, ms = server.recovery()
            recoveries.append({"after_round": n, "recovered": recovered, "elapsed_ms": ms})
            log(f"  restart: recovered {recovered} recordings in {ms} ms")
        # Every file of every round is indexed and its callback queued; wait for the deliveries.
        end = time.time() + a.timeout
        while True:
            rows = server.rows()
            keys, _ = receiver.file_callbacks()
            if all(row[5] in keys for row in rows) or time.time() > end:
                break
            time.sleep(0.5)
        server.stop()
    finally:
        stop_all()
        receiver.close()

    rows = server.rows()
    keys, deliveries = receiver.file_callbacks()
    # Indexed exactly once: one row per (round, stream, format), one row per stored object.
    by_slot = {}
    for record_id, app, stream, fmt, bucket, obj, start, end_ms in rows:
        by_slot.setdefault((stream, fmt), []).append((obj, start, end_ms))
    for n in range(a.rounds):
        for i in range(a.streams):
            for fmt in FORMATS:
                got = by_slot.get((f"r{n}s{i}", fmt), [])
                if len(got) != 1:
                    failures.append(f"round {n} stream {i} {fmt}: {len(got)} index rows (expected 1)")
    objects = [row[5] for row in rows]
    if len(set(objects)) != len(objects):
        failures.append(f"{len(objects) - len(set(objects))} objects indexed twice")
    buckets = [d for d in glob.glob(os.path.join(server.data, "buckets", "*")) if os.path.isdir(d)]
    stored = []
    for b in buckets:
        for root, _, files in os.walk(b):
            if os.path.basename(root) == ".spool" or "/.spool" in root:
                continue
            stored += [os.path.relpath(os.path.join(root, f), b) for f in files if f.endswith((".mp4", ".m3u8"))]
    if sorted(stored) != sorted(objects):
        extra = sorted(set(stored) - set(objects))[:5]
        missing = sorted(set(objects) - set(stored))[:5]
        failures.append(f"stored files and index rows differ: {len(stored)} files, {len(objects)} rows; "
                        f"unindexed {extra}, missing {missing}")
    # Callbacks: every row's, one key per file.
    no_callback = [o for o in objects if o not in keys]
    if no_callback:
        failures.append(f"{len(no_callback)} files got no callback, e.g. {no_callback[:3]}")
    unstable = {u: k for u, k in keys.items() if len(k) != 1 or None in k}
    if unstable:
        failures.append(f"{len(unstable)} files got callbacks with differing or missing Idempotency-Keys")
    # Spool.
    left = [p for b in buckets for p in glob.glob(os.path.join(b, ".spool", "**", "*"), recursive=True)
            if os.path.isfile(p)]
    if left:
        failures.append(f"{len(left)} files left in the spool, e.g. {left[:3]}")
    # Decode every stored file.
    paths = [os.path.join(b, o) for b in buckets for o in stored]
    log(f"decoding {len(paths)} files")
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        errors = [(p, e) for p, e in zip(paths, pool.map(decode_errors, paths)) if e]
    for p, e in errors[:10]:
        failures.append(f"decode errors in {os.path.relpath(p, server.data)}: {e}")
    if len(errors) > 10:
        failures.append(f"... {len(errors) - 10} more files with decode errors")
    # Loss at each kill: wall time of the kill minus the end of the recording it cut.
    loss = {fmt: [] for fmt in FORMATS}
    for rnd in rounds:
        for i in range(a.streams):
            for fmt in FORMATS:
                for obj, start, end_ms in by_slot.get((f"r{rnd['round']}s{i}", fmt), []):
                    loss[fmt].append(rnd["killed_at"] - end_ms / 1e3)
    reference = None
    if not a.no_reference:
        log("nginx-rtmp: one round, killed with SIGKILL")
        nginx_work = os.path.join(a.work, "nginx-run")
        os.makedirs(nginx_work, exist_ok=True)
        reference = run_nginx(a, nginx_work, rng.uniform(a.min_secs, a.max_secs))
    for fmt, values in loss.items():
        worst = max(values, default=0.0)
        if worst > a.max_loss:
            failures.append(f"a {fmt} recording lost {worst:.2f} s at a kill (more than --max-loss {a.max_loss})")
    out = {
        "reference_nginx_rtmp": reference,
        "seed": seed, "streams": a.streams, "rounds": a.rounds, "formats": list(FORMATS),
        "files": len(stored), "index_rows": len(rows), "callback_deliveries": deliveries,
        "callback_files": len(keys), "decode_errors": len(errors),
        "largest_loss_s": {f: round(max(v), 3) if v else None for f, v in loss.items()},
        "median_loss_s": {f: round(sorted(v)[len(v) // 2], 3) if v else None for f, v in loss.items()},
        "recoveries": recoveries,
        "largest_recovery_ms": max((r["elapsed_ms"] for r in recoveries), default=None),
        "rounds_detail": rounds,
        "failures": failures,
    }
    json.dump(out, sys.stdout, indent=1)
    print()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
