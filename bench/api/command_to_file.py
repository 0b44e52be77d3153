#!/usr/bin/env python3
"""Command-to-file benchmark of liverec (issue 5, point 3), run by bench/run-command-to-file.sh.

Part 1, a 1-hour 2 Mbps recording published without -re (about a minute of ingest):
  A. manual config (OnDemand=7): `start` as soon as the stream is up, the publisher ends, then
     `stop` + `cancel_delay`; measured from cancel_delay's response to the MP4 at its final name,
     to its row in the recordings table, and ffprobe reading it.
  B. automatic config (OnDemand=0, DelayTime=15 s): no command; measured from the publisher's
     exit + DelayTime to the same three events.
Part 2, how much of the stream after a `start` is missing from the file, liverec (manual, GOP
  cache pre-roll) against nginx-rtmp (`record all manual` + /control/record/start). One ffmpeg
  publishes hour.flv in real time (-re) to both servers through the tee muxer. At a random phase
  of the 2 s GOP, `start` goes to both servers at once; after a hold, both stop. The first video
  packet of each file is found in hour.flv by its MD5 (both servers copy packets verbatim), which
  gives its media time. The clock that maps wall time to media time is the arrival clock: the
  median of (wall time nginx had a keyframe on disk - its media time); ffmpeg's -progress clock
  (when it sent) is reported beside it. missing = max(0, first packet - media time at command),
  pre-roll = the opposite. liverec never writes a frame twice, so a `start` whose cached GOP the
  previous recording already wrote (`overlap`) waits for the next keyframe: those are reported
  apart.
Prints a JSON document (and a short table on stderr). Stops everything it started.
"""
import argparse, bisect, glob, hashlib, json, os, random, signal, sqlite3, subprocess, sys, threading, time
import urllib.request

DOMAIN = "live.liverec.local"
POLL_S = 0.001            # file/db polling interval
FINAL_TIMEOUT_S = 120     # longest wait for a file after its command / deadline
AUTO_DELAY_S = 15         # DelayTime of the automatic config (the API's minimum)
MANUAL_DELAY_S = 600      # DelayTime of the manual config (never reached: cancel_delay ends it)

PROCS = []


def log(*a):
    print(f"[{time.strftime('%H:%M:%S')}]", *a, file=sys.stderr, flush=True)


def spawn(cmd, **kw):
    p = subprocess.Popen(cmd, start_new_session=True, **kw)
    PROCS.append(p)
    return p


def stop_all():
    for p in PROCS:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except OSError:
                pass
    for p in PROCS:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            p.wait()


def wait_port(port, timeout=30):
    import socket
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


class Api:
    def __init__(self, apibench, port):
        self.base = [apibench, "--addr", f"127.0.0.1:{port}"]

    def call(self, action, **params):
        out = subprocess.run(self.base + ["call", action] + [f"{k}={v}" for k, v in params.items()],
                             capture_output=True, text=True, check=True)
        return json.loads(out.stdout)

    def command(self, app, stream, cmd):
        return self.call("RealTimeRecordCommand", DomainName=DOMAIN, AppName=app, StreamName=stream, Command=cmd)


def mp4s(bucket_dir, app, stream):
    d = os.path.join(bucket_dir, "record", DOMAIN, app, stream)
    try:
        return {e.name for e in os.scandir(d) if e.name.endswith(".mp4")}
    except FileNotFoundError:
        return set()


def db_rows(db, app, stream):
    try:
        c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.05)
        try:
            return c.execute("select oss_object, start_time, end_time, duration_secs, size from recordings "
                             "where domain=? and app=? and stream=? order by start_time", (DOMAIN, app, stream)).fetchall()
        finally:
            c.close()
    except sqlite3.Error:
        return None


def ffprobe_duration(path):
    r = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path],
                       capture_output=True, text=True)
    try:
        return float(r.stdout.strip()) if r.returncode == 0 else None
    except ValueError:
        return None


def wait_final(bucket_dir, db, app, stream, before_files, before_rows, t_ref):
    """Polls until a new MP4 is at its final name and its row is in the database; then ffprobes
    it. Times in ms after t_ref (Unix seconds)."""
    res = {"file_ms": None, "row_ms": None}
    path = None
    end = time.time() + FINAL_TIMEOUT_S
    while time.time() < end and (res["file_ms"] is None or res["row_ms"] is None):
        if res["file_ms"] is None:
            new = mp4s(bucket_dir, app, stream) - before_files
            if new:
                res["file_ms"] = (time.time() - t_ref) * 1e3
                path = os.path.join(bucket_dir, "record", DOMAIN, app, stream, sorted(new)[0])
        if res["row_ms"] is None:
            rows = db_rows(db, app, stream)
            if rows is not None and len(rows) > before_rows:
                res["row_ms"] = (time.time() - t_ref) * 1e3
                res["row"] = dict(zip(["object", "start_ms", "end_ms", "duration_secs", "size"], rows[-1]))
        time.sleep(POLL_S)
    if path:
        t = time.time()
        res["ffprobe_duration_s"] = ffprobe_duration(path)
        res["ffprobe_ok_ms"] = (time.time() - t_ref) * 1e3 if res["ffprobe_duration_s"] else None
        res["ffprobe_run_ms"] = (time.time() - t) * 1e3
        res["path"] = path
        res["size"] = os.path.getsize(path)
    return res


def full_check(path):
    """Demuxes the whole file (-c copy): container errors show up, decoding is not repeated."""
    r = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", path, "-c", "copy", "-f", "null", "-"],
                       capture_output=True, text=True)
    return {"returncode": r.returncode, "errors": len(r.stderr.strip().splitlines())}


# ---------------------------------------------------------------- part 1: one hour

def hour_case(a, api, bucket_dir, db, app, stream, manual):
    url = f"rtmp://127.0.0.1:{a.rtmp_port}/{app}/{stream}"
    before_files, before_rows = mp4s(bucket_dir, app, stream), len(db_rows(db, app, stream) or [])
    t_pub = time.time()
    pub = spawn(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-i", a.hour, "-c", "copy", "-f", "flv", url],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = {"case": "manual: stop + cancel_delay" if manual else f"automatic: end of DelayTime ({AUTO_DELAY_S} s)"}
    if manual:
        tries = 0
        while True:
            r = api.command(app, stream, "start")
            tries += 1
            if r["outcome"] == "OK" or pub.poll() is not None or time.time() - t_pub > 30:
                break
        out["start_outcome"], out["start_after_publish_ms"], out["start_tries"] = r["outcome"], (r["done_unix_ms"] / 1e3 - t_pub) * 1e3, tries
    pub.wait()
    t_end = time.time()
    out["publish_secs"] = round(t_end - t_pub, 2)
    out["ingest_mbps"] = round(os.path.getsize(a.hour) * 8 / 1e6 / (t_end - t_pub), 1)
    if manual:
        r1 = api.command(app, stream, "stop")
        r2 = api.command(app, stream, "cancel_delay")
        out["stop"] = {"outcome": r1["outcome"], "latency_ms": round(r1["latency_ms"], 2)}
        out["cancel_delay"] = {"outcome": r2["outcome"], "latency_ms": round(r2["latency_ms"], 2)}
        t_ref = r2["done_unix_ms"] / 1e3
        out["measured_from"] = "cancel_delay response"
    else:
        t_ref = t_end + AUTO_DELAY_S
        out["measured_from"] = "publisher exit + DelayTime"
    res = wait_final(bucket_dir, db, app, stream, before_files, before_rows, t_ref)
    out.update({k: (round(v, 1) if isinstance(v, float) else v) for k, v in res.items()})
    if res.get("path"):
        out["full_demux"] = full_check(res["path"])
    return out


# ---------------------------------------------------------------- part 2: start loss

def packet_index(path, cache):
    """Video packets of `path`: (md5 -> [pts seconds]) by ffmpeg's framemd5 with -c copy, and the
    sorted keyframe times by ffprobe. Cached next to the asset."""
    if cache and os.path.exists(cache) and os.path.getmtime(cache) >= os.path.getmtime(path):
        with open(cache) as f:
            c = json.load(f)
        return c["md5"], c["keyframes"]
    log(f"indexing the video packets of {path}")
    r = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", path, "-map", "0:v:0", "-c", "copy", "-f", "framemd5", "-"],
                       capture_output=True, text=True, check=True)
    idx = {}
    tb = 1e-3
    for line in r.stdout.splitlines():
        if line.startswith("#tb"):
            num, den = line.split(":")[1].strip().split("/")
            tb = int(num) / int(den)
        elif line and not line.startswith("#"):
            f = [x.strip() for x in line.split(",")]
            idx.setdefault(f[5], []).append(int(f[2]) * tb)
    r = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags",
                        "-of", "csv=p=0", path], capture_output=True, text=True, check=True)
    kfs = sorted(float(l.split(",")[0]) for l in r.stdout.splitlines() if "K" in l.split(",")[-1])
    if cache:
        with open(cache, "w") as f:
            json.dump({"md5": idx, "keyframes": kfs}, f)
    return idx, kfs


def first_video_packet(path):
    r = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", path, "-map", "0:v:0", "-c", "copy", "-frames:v", "1",
                        "-f", "framemd5", "-"], capture_output=True, text=True)
    for line in r.stdout.splitlines():
        if line and not line.startswith("#"):
            return line.split(",")[5].strip()
    return None


class Progress(threading.Thread):
    """Reads ffmpeg -progress lines; keeps (wall, out_time) pairs."""

    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream, self.samples = stream, []

    def run(self):
        for line in self.stream:
            if line.startswith("out_time_us="):
                try:
                    us = int(line.split("=", 1)[1])
                except ValueError:
                    continue
                if us > 0:
                    self.samples.append((time.time(), us / 1e6))

    def t0(self):
        return min(w - o for w, o in self.samples) if self.samples else None


def nginx_conf(work, rtmp_port, http_port, rec_dir):
    conf = os.path.join(work, "nginx.conf")
    for d in ("logs", "client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        os.makedirs(os.path.join(work, "nginx", d), exist_ok=True)
    with open(conf, "w") as f:
        f.write(f"""load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
worker_processes 1;
user nobody nogroup;
pid {work}/nginx/nginx.pid;
error_log {work}/nginx/logs/error.log warn;
events {{ worker_connections 1024; }}
rtmp {{
    server {{
        listen 127.0.0.1:{rtmp_port};
        chunk_size 4096;
        application live {{
            live on;
            recorder rec1 {{
                record all manual;
                record_path {rec_dir};
                record_unique on;
            }}
        }}
    }}
}}
http {{
    access_log off;
    client_body_temp_path {work}/nginx/client_body;
    proxy_temp_path {work}/nginx/proxy;
    fastcgi_temp_path {work}/nginx/fastcgi;
    uwsgi_temp_path {work}/nginx/uwsgi;
    scgi_temp_path {work}/nginx/scgi;
    server {{
        listen 127.0.0.1:{http_port};
        location /control {{ rtmp_control all; }}
    }}
}}
""")
    return conf


def http_get(url):
    t = time.time()
    with urllib.request.urlopen(url, timeout=10) as r:
        body = r.read().decode(errors="replace")
        status = r.status
    return {"status": status, "body": body.strip(), "sent_unix_ms": t * 1e3, "done_unix_ms": time.time() * 1e3}


def flv_first_video_key_end(path):
    """Byte offset where the first H.264 keyframe tag (not the sequence header) ends."""
    with open(path, "rb") as f:
        b = f.read(8 << 20)
    if b[:3] != b"FLV":
        return None
    off = int.from_bytes(b[5:9], "big") + 4
    while off + 11 <= len(b):
        typ, size = b[off] & 0x1f, int.from_bytes(b[off + 1:off + 4], "big")
        if typ == 9 and size >= 2 and (b[off + 11] >> 4) == 1 and b[off + 12] == 1:
            return off + 11 + size + 4
        off += 11 + size + 4
    return None


def median(v):
    v = sorted(v)
    return v[len(v) // 2] if v else None


def start_loss(a, api, bucket_dir, db, work):
    rec_dir = os.path.join(work, "nginx-rec")
    os.makedirs(rec_dir, exist_ok=True)
    os.chmod(rec_dir, 0o1777)
    os.chmod(work, 0o755)
    conf = nginx_conf(work, a.nginx_rtmp_port, a.nginx_http_port, rec_dir)
    spawn(["nginx", "-p", os.path.join(work, "nginx"), "-c", conf, "-g", "daemon off;"])
    if not (wait_port(a.nginx_rtmp_port) and wait_port(a.nginx_http_port)):
        raise SystemExit("nginx did not start (see its error.log)")
    index, keyframes = packet_index(a.hour, a.hour + ".video-index.json")
    app, stream = "live", "cmd"
    tee = (f"[f=flv:onfail=ignore:flush_packets=1]rtmp://127.0.0.1:{a.rtmp_port}/{app}/{stream}|"
           f"[f=flv:onfail=ignore:flush_packets=1]rtmp://127.0.0.1:{a.nginx_rtmp_port}/live/{stream}")
    pub = spawn(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-i", a.hour, "-map", "0", "-c", "copy",
                 "-progress", "pipe:1", "-stats_period", "0.02", "-f", "tee", tee],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    prog = Progress(pub.stdout)
    prog.start()
    time.sleep(5)
    rng = random.Random(a.seed)
    its = []
    prev_stop_unix = None
    for it in range(a.iterations):
        # Random phase against the 2 s GOP, and a random gap since the previous recording ended
        # (shorter or longer than one GOP: see `overlap` below).
        time.sleep(rng.uniform(a.min_gap, a.max_gap))
        lv_files, lv_rows = mp4s(bucket_dir, app, stream), len(db_rows(db, app, stream) or [])
        ng_before = set(os.listdir(rec_dir))
        box = {}
        th = threading.Thread(target=lambda: box.__setitem__("ng", http_get(
            f"http://127.0.0.1:{a.nginx_http_port}/control/record/start?app=live&name={stream}&rec=rec1")))
        th.start()
        box["lv"] = api.command(app, stream, "start")
        th.join()
        # Watch the nginx file grow, to time its first keyframe on disk (the reference method).
        ng_path, trace, t_hold = None, [], time.time() + a.hold
        while time.time() < t_hold:
            if ng_path is None:
                new = set(os.listdir(rec_dir)) - ng_before
                if new:
                    ng_path = os.path.join(rec_dir, sorted(new)[0])
            if ng_path is not None:
                try:
                    sz = os.path.getsize(ng_path)
                    if not trace or trace[-1][1] != sz:
                        trace.append((time.time(), sz))
                except OSError:
                    pass
            time.sleep(0.001)
        ng_stop = http_get(f"http://127.0.0.1:{a.nginx_http_port}/control/record/stop?app=live&name={stream}&rec=rec1")
        lv_stop = api.command(app, stream, "stop")
        lv_cancel = api.command(app, stream, "cancel_delay")
        fin = wait_final(bucket_dir, db, app, stream, lv_files, lv_rows, lv_cancel["done_unix_ms"] / 1e3)
        time.sleep(0.2)
        if ng_path is None:
            new = set(os.listdir(rec_dir)) - ng_before
            ng_path = os.path.join(rec_dir, sorted(new)[0]) if new else None
        kf_end = flv_first_video_key_end(ng_path) if ng_path else None
        kf_wall = next((t for t, s in trace if kf_end and s >= kf_end), None)
        its.append({"lv_start": box["lv"], "ng_start": box["ng"], "lv_stop": lv_stop["outcome"],
                    "lv_cancel": lv_cancel["outcome"], "ng_stop_status": ng_stop["status"],
                    "lv_path": fin.get("path"), "lv_final_ms": fin.get("file_ms"), "lv_row_ms": fin.get("row_ms"),
                    "lv_row": fin.get("row"), "ng_path": ng_path, "ng_kf_written_unix": kf_wall,
                    "prev_stop_unix": prev_stop_unix})
        prev_stop_unix = lv_stop["sent_unix_ms"] / 1e3
        log(f"iteration {it + 1}/{a.iterations}: liverec {box['lv']['outcome']}, nginx {box['ng']['status']}")
    t0_sent = prog.t0()
    if t0_sent is None:
        raise SystemExit("no -progress samples from the publisher")
    # First pass: media time of each file's first video packet (the clock does not matter here).
    for x in its:
        for who, path in (("lv", x["lv_path"]), ("ng", x["ng_path"])):
            md5 = first_video_packet(path) if path else None
            x[who + "_cands"] = index.get(md5, []) if md5 else []
            x[who + "_md5"] = md5
    # The arrival clock: when nginx had each first keyframe on disk, minus its media time. The
    # tee sends the same bytes to both servers at once, so this is when both had that media.
    lags = []
    for x in its:
        if x["ng_kf_written_unix"] and x["ng_cands"]:
            m_guess = x["ng_start"]["sent_unix_ms"] / 1e3 - t0_sent
            m_first = min(x["ng_cands"], key=lambda c: abs(c - m_guess))
            lags.append(x["ng_kf_written_unix"] - m_first)
    t0_arrival = median(lags) if lags else t0_sent
    rows = []
    for x in its:
        r = {"liverec": {}, "nginx": {}}
        for who, key, cmd_ms in (("liverec", "lv", x["lv_start"]["sent_unix_ms"]),
                                 ("nginx", "ng", x["ng_start"]["sent_unix_ms"])):
            d = r[who]
            m_cmd = cmd_ms / 1e3 - t0_arrival
            d["command_media_s"] = round(m_cmd, 3)
            if not x[key + "_cands"]:
                d["error"] = "first video packet not found in the asset" if x[key + "_md5"] else "no file / no video"
                continue
            m_first = min(x[key + "_cands"], key=lambda c: abs(c - m_cmd))
            d["first_packet_media_s"] = round(m_first, 3)
            d["missing_ms"] = round(max(0.0, m_first - m_cmd) * 1e3, 1)
            d["preroll_ms"] = round(max(0.0, m_cmd - m_first) * 1e3, 1)
            m_cmd_sent = cmd_ms / 1e3 - t0_sent
            d["missing_ms_by_send_clock"] = round(max(0.0, m_first - m_cmd_sent) * 1e3, 1)
            d["duration_s"] = ffprobe_duration(x[key + "_path"])
        if x["ng_kf_written_unix"]:
            # The reference method (../shared/bench/control_latency.py): command -> keyframe on disk.
            r["nginx"]["kf_on_disk_after_command_ms"] = round(x["ng_kf_written_unix"] * 1e3 - x["ng_start"]["sent_unix_ms"], 1)
        # liverec never writes a frame twice: if the previous recording already wrote the cached
        # keyframe's GOP (it stopped after that keyframe), the new file waits for the next one.
        m_cmd = x["lv_start"]["sent_unix_ms"] / 1e3 - t0_arrival
        kf_before = keyframes[max(0, bisect.bisect_right(keyframes, m_cmd) - 1)] if keyframes else None
        prev_stop_media = x["prev_stop_unix"] - t0_arrival if x["prev_stop_unix"] else None
        r["liverec"]["overlap"] = bool(prev_stop_media is not None and kf_before is not None and prev_stop_media >= kf_before)
        r["liverec"]["gap_since_prev_stop_s"] = (round(x["lv_start"]["sent_unix_ms"] / 1e3 - x["prev_stop_unix"], 2)
                                                 if x["prev_stop_unix"] else None)
        r["liverec"]["start_outcome"] = x["lv_start"]["outcome"]
        r["liverec"]["start_latency_ms"] = round(x["lv_start"]["latency_ms"], 2)
        r["liverec"]["cancel_delay_to_final_ms"] = x["lv_final_ms"] and round(x["lv_final_ms"], 1)
        r["liverec"]["cancel_delay_to_row_ms"] = x["lv_row_ms"] and round(x["lv_row_ms"], 1)
        if x["lv_row"]:
            r["liverec"]["db_start_minus_command_ms"] = round(x["lv_row"]["start_ms"] - x["lv_start"]["sent_unix_ms"], 1)
        r["nginx"]["start_latency_ms"] = round(x["ng_start"]["done_unix_ms"] - x["ng_start"]["sent_unix_ms"], 2)
        rows.append(r)
    return {"t0_samples": len(prog.samples), "arrival_minus_send_clock_ms": round((t0_arrival - t0_sent) * 1e3, 1),
            "arrival_clock_from": len(lags), "iterations": rows}


def summarize(vals):
    v = sorted(x for x in vals if x is not None)
    if not v:
        return None
    return {"n": len(v), "min": v[0], "median": v[len(v) // 2], "max": v[-1], "mean": round(sum(v) / len(v), 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--liverec", required=True)
    ap.add_argument("--apibench", required=True)
    ap.add_argument("--hour", required=True, help="the 1-hour FLV asset")
    ap.add_argument("--work", required=True)
    ap.add_argument("--rtmp-port", type=int, default=19352)
    ap.add_argument("--api-port", type=int, default=18082)
    ap.add_argument("--nginx-rtmp-port", type=int, default=19353)
    ap.add_argument("--nginx-http-port", type=int, default=18083)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--hold", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--min-gap", type=float, default=0.2, help="least wait before each start, s")
    ap.add_argument("--max-gap", type=float, default=4.2, help="longest wait before each start, s")
    ap.add_argument("--skip-hour", action="store_true")
    ap.add_argument("--skip-start-loss", action="store_true")
    a = ap.parse_args()

    def on_signal(sig, _frame):
        raise SystemExit(128 + sig)
    signal.signal(signal.SIGTERM, on_signal)

    data = os.path.join(a.work, "data")
    bucket_dir, db = os.path.join(data, "buckets", "default"), os.path.join(data, "liverec.db")
    with open(os.path.join(a.work, "liverec.toml"), "w") as f:
        f.write(f'data_dir = "{data}"\nrtmp_listen = "127.0.0.1:{a.rtmp_port}"\napi_listen = "127.0.0.1:{a.api_port}"\n'
                '[record]\nmode = "manual"\n')
    result = {}
    try:
        log_f = open(os.path.join(a.work, "liverec.log"), "w")
        spawn([a.liverec, "serve", "--config", os.path.join(a.work, "liverec.toml")], stderr=log_f, stdout=log_f)
        if not (wait_port(a.api_port) and wait_port(a.rtmp_port)):
            raise SystemExit("liverec did not start (see liverec.log)")
        api = Api(a.apibench, a.api_port)
        fmt = {"RecordFormat.1.Format": "mp4", "RecordFormat.1.CycleDuration": "21600"}
        for app_, on_demand, delay in (("*", 7, MANUAL_DELAY_S), ("auto", 0, AUTO_DELAY_S)):
            r = api.call("AddLiveAppRecordConfig", DomainName=DOMAIN, AppName=app_, OssEndpoint="local",
                         OssBucket="default", OnDemand=on_demand, DelayTime=delay, **fmt)
            if r["outcome"] != "OK":
                raise SystemExit(f"AddLiveAppRecordConfig {app_}: {r}")
        if not a.skip_hour:
            log("part 1A: 1-hour asset, manual, stop + cancel_delay")
            result["hour_manual"] = hour_case(a, api, bucket_dir, db, "live", "hourA", manual=True)
            log(json.dumps(result["hour_manual"]))
            log(f"part 1B: 1-hour asset, automatic, end of DelayTime ({AUTO_DELAY_S} s)")
            result["hour_auto"] = hour_case(a, api, bucket_dir, db, "auto", "hourB", manual=False)
            log(json.dumps(result["hour_auto"]))
        if not a.skip_start_loss:
            log(f"part 2: start loss, liverec vs nginx-rtmp, {a.iterations} iterations")
            sl = start_loss(a, api, bucket_dir, db, a.work)
            its = sl["iterations"]
            keys = ("missing_ms", "preroll_ms", "missing_ms_by_send_clock", "start_latency_ms",
                    "cancel_delay_to_final_ms", "cancel_delay_to_row_ms", "db_start_minus_command_ms",
                    "kf_on_disk_after_command_ms")
            groups = {"nginx": [i["nginx"] for i in its],
                      "liverec": [i["liverec"] for i in its],
                      "liverec_no_overlap": [i["liverec"] for i in its if not i["liverec"]["overlap"]],
                      "liverec_overlap": [i["liverec"] for i in its if i["liverec"]["overlap"]]}
            sl["summary"] = {g: {k: summarize([d.get(k) for d in ds]) for k in keys if any(d.get(k) is not None for d in ds)}
                             for g, ds in groups.items() if ds}
            result["start_loss"] = sl
    finally:
        stop_all()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
