#!/usr/bin/env node
// Plays a media URL in Debian's headless Chromium and prints one JSON line with what happened;
// exits 0 only if the playback succeeded (1: it did not, 2: bad usage, or no chromium or
// playwright-core).
//
//   node tests/browser/play.mjs mp4 <url> [--seek S] [--size WxH] [--audio] [--rate R] [--timeout S]
//   node tests/browser/play.mjs hls <url> [--native] [--size WxH] [--audio] [--rate R] [--timeout S]
//
// mp4: a <video> plays the file until 0.5 s of media went by, seeks to --seek (default: the
//      middle), checks currentTime lands within --seek-tolerance (default 0.25 s) and that
//      playback goes on for another 0.5 s.
// hls: hls.js (or the browser's own HLS with --native) plays the playlist to its end; every
//      fragment of the playlist must load, with no hls.js error beyond buffer stalls and the
//      start-up gap of a stream with B-frames.
// Both: --size checks the decoded picture size, --audio that audio was decoded; --rate sets
// the playback rate (default 1). The page comes from a static server of this script on
// 127.0.0.1:0, so the media is cross-origin and its server must answer CORS (the <video> is
// crossorigin="anonymous" in both modes).

import { createServer } from 'node:http';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  // Media plays without a click; muted anyway.
  '--autoplay-policy=no-user-gesture-required',
];
// Stalls happen under load on 2 cores and recover by themselves, and hls.js skips the gap
// before the first video frame of a stream with B-frames (its first pts is after the audio's);
// any other hls.js error is a failure.
const STALLS = new Set(['bufferStalledError', 'bufferNudgeOnStall']);
const benignHlsError = (e) => STALLS.has(e.details) || (e.details === 'bufferSeekOverHole' && e.at < 1);

function usage(msg) {
  process.stdout.write(JSON.stringify({ ok: false, error: `usage: ${msg}` }) + '\n');
  process.exit(2);
}

function parseArgs(argv) {
  const [mode, url, ...rest] = argv;
  if (mode !== 'mp4' && mode !== 'hls') usage('mode must be mp4 or hls');
  if (!url) usage('a media URL is required');
  const o = { mode, url, seek: null, seekTolerance: 0.25, size: null, audio: false, rate: 1, timeout: 60, native: false };
  const num = (name, v) => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n)) usage(`${name} needs a number`);
    return n;
  };
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    switch (a) {
      case '--seek': o.seek = num(a, rest[++i]); break;
      case '--seek-tolerance': o.seekTolerance = num(a, rest[++i]); break;
      case '--rate': o.rate = num(a, rest[++i]); break;
      case '--timeout': o.timeout = num(a, rest[++i]); break;
      case '--audio': o.audio = true; break;
      case '--native': o.native = true; break;
      case '--size': {
        const m = /^(\d+)x(\d+)$/.exec(rest[++i] ?? '');
        if (!m) usage('--size needs WxH');
        o.size = [Number(m[1]), Number(m[2])];
        break;
      }
      default: usage(`unknown option ${a}`);
    }
  }
  return o;
}

// The test page and hls.js, from an origin other than the media's.
async function startPageServer() {
  const hlsJs = await readFile(join(here, 'node_modules/hls.js/dist/hls.min.js'));
  const page = Buffer.from('<!doctype html><html><head><meta charset="utf-8"><script src="/hls.js"></script></head><body></body></html>');
  const server = createServer((req, res) => {
    const [body, type] = req.url === '/hls.js' ? [hlsJs, 'text/javascript'] : [page, 'text/html'];
    res.writeHead(200, { 'content-type': type, 'content-length': body.length, 'cache-control': 'no-store' });
    res.end(body);
  });
  await new Promise((ok, fail) => server.once('error', fail).listen(0, '127.0.0.1', ok));
  return { server, origin: `http://127.0.0.1:${server.address().port}` };
}

// Runs in the page: what the browser says it can decode.
function codecSupport() {
  const v = document.createElement('video');
  const types = {
    h264_aac_mp4: 'video/mp4; codecs="avc1.64001e, mp4a.40.2"',
    h264_mp4: 'video/mp4; codecs="avc1.42e01e"',
    aac_mp4: 'audio/mp4; codecs="mp4a.40.2"',
    hls: 'application/vnd.apple.mpegurl',
  };
  const out = {};
  for (const [k, t] of Object.entries(types)) {
    out[k] = { canPlayType: v.canPlayType(t), mse: !!(window.MediaSource && MediaSource.isTypeSupported(t)) };
  }
  out.hlsjs_supported = !!(window.Hls && Hls.isSupported());
  return out;
}

// Runs in the page: starts playback and keeps its state in window.__play for the waits below.
function startPlayback({ mode, url, rate, native }) {
  const st = { events: [], errors: [], fragments: 0, fragmentsInPlaylist: null, engine: null, ended: false, error: null };
  window.__play = st;
  const v = document.createElement('video');
  v.muted = true;
  v.crossOrigin = 'anonymous';
  v.preload = 'auto';
  document.body.appendChild(v);
  window.__video = v;
  for (const e of ['loadedmetadata', 'canplay', 'playing', 'waiting', 'seeking', 'seeked', 'ended', 'stalled']) {
    v.addEventListener(e, () => st.events.push([e, Math.round(v.currentTime * 1000) / 1000]));
  }
  v.addEventListener('ended', () => { st.ended = true; });
  v.addEventListener('error', () => {
    const err = v.error;
    st.error = { code: err ? err.code : null, message: err ? err.message : 'unknown media error' };
  });
  v.addEventListener('loadedmetadata', () => { v.playbackRate = rate; });
  if (mode === 'hls' && !native && window.Hls && Hls.isSupported()) {
    st.engine = 'hls.js';
    const hls = new Hls({ enableWorker: true, debug: false });
    window.__hls = hls;
    hls.on(Hls.Events.LEVEL_LOADED, (_, d) => {
      st.fragmentsInPlaylist = d.details.fragments.length;
      st.live = d.details.live;
    });
    hls.on(Hls.Events.FRAG_LOADED, (_, d) => { if (typeof d.frag.sn === 'number') st.fragments++; });
    hls.on(Hls.Events.ERROR, (_, d) => {
      st.errors.push({
        type: d.type, details: d.details, fatal: d.fatal, at: v.currentTime,
        url: d.frag?.url ?? d.url ?? d.context?.url ?? null,
        status: d.response?.code ?? d.networkDetails?.status ?? null,
        reason: d.reason ?? (d.error ? String(d.error) : null),
      });
      if (d.fatal) st.error = { code: null, message: `hls.js fatal ${d.type}: ${d.details}` };
    });
    hls.loadSource(url);
    hls.attachMedia(v);
  } else {
    if (mode === 'hls') {
      st.engine = 'native';
      if (!v.canPlayType('application/vnd.apple.mpegurl')) {
        st.error = { code: null, message: 'this browser has no native HLS and hls.js is not supported' };
        return;
      }
    } else {
      st.engine = 'video';
    }
    v.src = url;
  }
  v.play().catch((e) => st.events.push(['play() rejected', String(e)]));
}

// Runs in the page.
function snapshot() {
  const v = window.__video;
  const st = window.__play;
  const q = v && v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : null;
  const buffered = [];
  if (v) for (let i = 0; i < v.buffered.length; i++) buffered.push([v.buffered.start(i), v.buffered.end(i)]);
  return {
    engine: st?.engine ?? null,
    currentTime: v ? v.currentTime : null,
    duration: v && Number.isFinite(v.duration) ? v.duration : null,
    ended: !!st?.ended,
    paused: v ? v.paused : null,
    readyState: v ? v.readyState : null,
    videoWidth: v ? v.videoWidth : null,
    videoHeight: v ? v.videoHeight : null,
    decodedFrames: q ? q.totalVideoFrames : null,
    droppedFrames: q ? q.droppedVideoFrames : null,
    videoDecodedBytes: v ? v.webkitVideoDecodedByteCount ?? null : null,
    audioDecodedBytes: v ? v.webkitAudioDecodedByteCount ?? null : null,
    buffered,
    mediaError: st?.error ?? null,
    hlsErrors: st?.errors ?? [],
    fragmentsLoaded: st?.engine === 'hls.js' ? st.fragments : null,
    fragmentsInPlaylist: st?.fragmentsInPlaylist ?? null,
    events: st?.events ?? [],
  };
}

class Failure extends Error {
  // exit code: 1 the playback failed, 2 the browser or playwright-core is missing
  constructor(message, code = 1) { super(message); this.code = code; }
}

// Segments of a media playlist (the first variant of a master playlist), fetched as the page
// would, for native playback where no hls.js tells the count.
async function playlistSegments(url, origin) {
  const get = async (u) => {
    const r = await fetch(u, { headers: { origin } });
    if (!r.ok) throw new Failure(`GET ${u}: HTTP ${r.status}`);
    return r.text();
  };
  let text = await get(url);
  let base = url;
  if (text.includes('#EXT-X-STREAM-INF')) {
    const lines = text.split('\n').map((l) => l.trim());
    const i = lines.findIndex((l) => l.startsWith('#EXT-X-STREAM-INF'));
    const uri = lines.slice(i + 1).find((l) => l && !l.startsWith('#'));
    base = new URL(uri, url).href;
    text = await get(base);
  }
  return (text.match(/^#EXTINF/gm) ?? []).length;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const deadline = started + o.timeout * 1000;
  const left = () => Math.max(1, deadline - Date.now());
  const result = { ok: false, mode: o.mode, url: o.url, error: null };
  const consoleLines = [];
  const network = [];
  let cleanup = async () => {};
  let page = null;
  let exitCode = 1;
  // Native HLS fragment counts, from the network log rather than from hls.js.
  let counts = {};
  const state = async () => ({ ...(await page.evaluate(snapshot)), ...counts });
  try {
    const { chromium } = await import('playwright-core').catch((e) => {
      throw new Failure(`playwright-core is not installed in tests/browser (run ./scripts/test.sh): ${e.message}`, 2);
    });
    const { server, origin } = await startPageServer();
    const profile = await mkdtemp(join(tmpdir(), 'liverec-chromium-'));
    let context = null;
    cleanup = async () => {
      if (context) await context.close().catch(() => {});
      server.close();
      await rm(profile, { recursive: true, force: true }).catch(() => {});
    };
    try {
      context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: left(),
      });
    } catch (e) {
      throw new Failure(`cannot launch ${CHROMIUM} (run ./scripts/test.sh to install it): ${e.message.split('\n')[0]}`, 2);
    }
    result.browser = context.browser()?.version() ?? null;
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(left());
    page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
    const media = (u) => /^https?:/.test(u) && !u.startsWith(origin);
    page.on('response', (r) => {
      if (media(r.url())) {
        network.push({ url: r.url(), status: r.status(), range: r.request().headers().range ?? null });
      }
    });
    page.on('requestfailed', (r) => {
      if (media(r.url())) network.push({ url: r.url(), failed: r.failure()?.errorText ?? 'failed' });
    });
    await page.goto(`${origin}/`);
    result.codecs = await page.evaluate(codecSupport);
    if (result.codecs.h264_aac_mp4.canPlayType === '' && !result.codecs.h264_aac_mp4.mse) {
      throw new Failure(`this chromium cannot play H.264/AAC in MP4: canPlayType('${'video/mp4; codecs="avc1.64001e, mp4a.40.2"'}') is '' and MediaSource rejects it`);
    }
    await page.evaluate(startPlayback, { mode: o.mode, url: o.url, rate: o.rate, native: o.native });

    // Waits until `cond(snapshot)` holds; fails early on a media error.
    const until = async (what, cond) => {
      for (;;) {
        const s = await state();
        result.state = s;
        if (s.mediaError) throw new Failure(`media error while waiting for ${what}: ${s.mediaError.message || `code ${s.mediaError.code}`}`);
        if (cond(s)) return s;
        if (Date.now() >= deadline) throw new Failure(`timed out after ${o.timeout} s waiting for ${what}`);
        await page.waitForTimeout(100);
      }
    };

    if (o.mode === 'mp4') {
      const first = await until('playback to start (0.5 s of media)', (s) => s.currentTime >= 0.5 && s.decodedFrames > 0);
      const duration = first.duration;
      const target = o.seek ?? (duration ? duration / 2 : 1);
      // Where the seek landed is read in the 'seeked' handler: playback goes on right after.
      await page.evaluate((t) => {
        window.__landed = null;
        const v = window.__video;
        v.addEventListener('seeked', () => { window.__landed = v.currentTime; }, { once: true });
        v.currentTime = t;
      }, target);
      await page.waitForFunction(() => window.__landed !== null || window.__play.error, null, { timeout: left(), polling: 50 });
      const landed = await page.evaluate(() => window.__landed);
      if (landed === null) throw new Failure(`media error during the seek to ${target} s`);
      result.seek = { target, landed, tolerance: o.seekTolerance };
      if (Math.abs(landed - target) > o.seekTolerance) throw new Failure(`seek to ${target} s landed at ${landed} s`);
      const need = duration ? Math.min(landed + 0.5, duration - 0.05) : landed + 0.5;
      await until('playback to continue 0.5 s after the seek', (s) => s.currentTime >= need || (s.ended && s.currentTime > landed));
    } else {
      const s = await until('the end of the playlist', (s) => s.ended);
      if (s.engine === 'native') {
        // Chromium's own player: fragments are the distinct media URLs it fetched.
        const loaded = new Set(network.filter((n) => n.status >= 200 && n.status < 300 && !/\.m3u8(\?|$)/.test(n.url)).map((n) => n.url));
        counts = { fragmentsLoaded: loaded.size, fragmentsInPlaylist: await playlistSegments(o.url, origin) };
        Object.assign(s, counts);
      }
      if (s.fragmentsInPlaylist !== null && s.fragmentsLoaded < s.fragmentsInPlaylist) {
        throw new Failure(`${s.fragmentsLoaded} of ${s.fragmentsInPlaylist} fragments loaded`);
      }
      const bad = s.hlsErrors.filter((e) => !benignHlsError(e));
      if (bad.length) throw new Failure(`hls.js reported errors: ${bad.map((e) => e.details).join(', ')}`);
      if (s.duration && Math.abs(s.currentTime - s.duration) > 0.5) {
        throw new Failure(`ended at ${s.currentTime} s of ${s.duration} s`);
      }
    }
    const s = await state();
    result.state = s;
    if (!(s.decodedFrames > 0)) throw new Failure('no video frame was decoded');
    if (o.size && (s.videoWidth !== o.size[0] || s.videoHeight !== o.size[1])) {
      throw new Failure(`decoded size ${s.videoWidth}x${s.videoHeight}, expected ${o.size[0]}x${o.size[1]}`);
    }
    if (o.audio && !(s.audioDecodedBytes > 0)) throw new Failure('no audio was decoded');
    result.ok = true;
    exitCode = 0;
  } catch (e) {
    result.error = e instanceof Failure ? e.message : `${e.name}: ${e.message.split('\n')[0]}`;
    if (e instanceof Failure) exitCode = e.code;
    // The state at the failure, not at the last wait.
    if (page) result.state = (await state().catch(() => null)) ?? result.state;
  } finally {
    await cleanup();
  }
  const cors = consoleLines.filter((l) => /CORS|Access-Control-Allow-Origin/i.test(l));
  if (cors.length) {
    result.cors_error = `the media server's CORS answer was refused (it must send Access-Control-Allow-Origin): ${cors[0]}`;
    if (!result.ok && result.error) result.error = `CORS error: ${result.error}`;
  }
  result.media_requests = network.length;
  result.partial_responses = network.filter((n) => n.status === 206).length;
  // Chromium aborts a media request itself when it re-requests with another range.
  result.http_errors = network.filter((n) => (n.failed && n.failed !== 'net::ERR_ABORTED') || n.status >= 400);
  if (!result.ok && result.http_errors.length) {
    const first = result.http_errors.slice(0, 3).map((n) => `${n.url} ${n.failed ?? `HTTP ${n.status}`}`);
    result.error += `; failed requests: ${first.join(', ')}`;
  }
  result.network = network.slice(0, 50);
  result.console = consoleLines.slice(0, 20);
  result.elapsed_ms = Date.now() - started;
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exitCode = exitCode;
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ ok: false, error: `play.mjs crashed: ${e.stack || e}` }) + '\n');
  process.exitCode = 1;
});
