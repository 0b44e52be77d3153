#!/usr/bin/env node
// Uses liverec's dashboard as a person would, in Debian's headless Chromium, and prints one JSON
// line with what happened; exits 0 only if every step worked (1: a step failed, 2: bad usage,
// or no chromium or playwright-core).
//
//   node tests/browser/dashboard.mjs <api base URL> --key-id ID --secret S --stream DOMAIN/APP/NAME
//        --shots DIR [--timeout S]
//
// Steps: a wrong secret is refused at the login form; the right one logs in; the stream
// ffmpeg publishes shows as live and recording; `stop` pauses it (with the DelayTime countdown),
// `cancel_delay` ends it; its recordings appear in the Recordings tab and each format listed
// plays to its end in the page's player (MP4 natively, HLS through hls.js); the Configs and
// Storage & errors tabs render. Screenshots of each step go to --shots.

import { mkdtemp, rm, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];

class Failure extends Error {
  constructor(message, code = 1) { super(message); this.code = code; }
}

function parseArgs(argv) {
  const [base, ...rest] = argv;
  const o = { base, keyId: null, secret: null, stream: null, shots: null, timeout: 120 };
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    const v = rest[++i];
    if (v === undefined) throw new Failure(`usage: ${a} needs a value`, 2);
    switch (a) {
      case '--key-id': o.keyId = v; break;
      case '--secret': o.secret = v; break;
      case '--stream': o.stream = v; break;
      case '--shots': o.shots = v; break;
      case '--timeout': o.timeout = Number(v); break;
      default: throw new Failure(`usage: unknown option ${a}`, 2);
    }
  }
  if (!base || !o.keyId || !o.secret || !o.stream || !o.shots) {
    throw new Failure('usage: dashboard.mjs <base URL> --key-id ID --secret S --stream D/A/N --shots DIR', 2);
  }
  return o;
}

async function main() {
  const result = { ok: false, steps: [], console: [], requests_with_secret: [] };
  let o;
  let context = null;
  let profile = null;
  try {
    o = parseArgs(process.argv.slice(2));
    const deadline = Date.now() + o.timeout * 1000;
    const left = () => Math.max(1000, deadline - Date.now());
    await mkdir(o.shots, { recursive: true });
    const { chromium } = await import('playwright-core').catch((e) => {
      throw new Failure(`playwright-core is not installed in tests/browser (run ./scripts/test.sh): ${e.message}`, 2);
    });
    profile = await mkdtemp(join(tmpdir(), 'liverec-dashboard-'));
    try {
      context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: left(),
        viewport: { width: 1280, height: 720 },
      });
    } catch (e) {
      throw new Failure(`cannot launch ${CHROMIUM} (run ./scripts/test.sh to install it): ${e.message.split('\n')[0]}`, 2);
    }
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(30_000);
    page.on('console', (m) => result.console.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => result.console.push(`pageerror: ${e.message}`));
    // The secret must never travel in a URL.
    page.on('request', (r) => { if (r.url().includes(o.secret)) result.requests_with_secret.push(r.url()); });
    const step = async (name, fn) => {
      const started = Date.now();
      try {
        const detail = await fn();
        result.steps.push({ name, ms: Date.now() - started, ...(detail || {}) });
      } catch (e) {
        await page.screenshot({ path: join(o.shots, `failed-${name}.png`) }).catch(() => {});
        throw new Failure(`${name}: ${e.message.split('\n')[0]}`);
      }
    };
    const shot = (name) => page.screenshot({ path: join(o.shots, `${name}.png`) });
    const row = `tr[data-stream="${o.stream}"]`;
    const [domain] = o.stream.split('/');

    await step('wrong key refused', async () => {
      await page.goto(`${o.base}/ui/`);
      await page.waitForSelector('#login:not([hidden])');
      await page.fill('#key-id', o.keyId);
      await page.fill('#key-secret', `${o.secret}-wrong`);
      await page.click('#login-form button[type=submit]');
      await page.waitForFunction(() => document.querySelector('#login-error').textContent.length > 0);
      const text = await page.textContent('#login-error');
      if (!/Wrong AccessKeyId or AccessKeySecret/.test(text)) throw new Error(`login error says ${text}`);
      if (await page.isVisible('#app')) throw new Error('the dashboard opened with a wrong secret');
      await shot('login-refused');
      return { error: text };
    });

    await step('log in', async () => {
      await page.fill('#key-id', o.keyId);
      await page.fill('#key-secret', o.secret);
      await page.click('#login-form button[type=submit]');
      await page.waitForSelector('#app:not([hidden])');
      const cookies = await context.cookies();
      const session = cookies.find((c) => c.name === 'liverec_ui');
      if (!session || !session.httpOnly || session.sameSite !== 'Strict') {
        throw new Error(`session cookie ${JSON.stringify(session)}`);
      }
    });

    await step('see the live stream recording', async () => {
      await page.waitForSelector(`${row} .recorder [data-state="recording"]`, { timeout: left() });
      // Codec and size come from the sequence header; uptime and bitrate move.
      await page.waitForFunction((sel) => {
        const cells = document.querySelector(sel)?.querySelectorAll('td');
        return cells && /x|×/.test(cells[1].textContent) && /kbit\/s/.test(cells[3].textContent) && !/^0 kbit/.test(cells[3].textContent);
      }, row);
      const cells = await page.$$eval(`${row} td`, (tds) => tds.map((td) => td.textContent.trim()));
      await shot('dashboard-live');
      return { cells };
    });

    await step('stop pauses with a countdown', async () => {
      await page.click(`${row} button[data-command="stop"]`);
      await page.waitForSelector(`${row} .recorder [data-state="paused"]`);
      const text = await page.textContent(`${row} .recorder`);
      if (!/paused \(stopped\) — files in \d/.test(text)) throw new Error(`recorder cell says ${text}`);
      await shot('stopped');
      return { recorder: text };
    });

    await step('cancel_delay ends the recording', async () => {
      await page.click(`${row} button[data-command="cancel_delay"]`);
      await page.waitForSelector(`${row} .recorder [data-state="idle"]`);
    });

    let listed = [];
    await step('the recording appears in the list', async () => {
      await page.click(`${row} a`);
      await page.waitForSelector('#tab-recordings:not([hidden])');
      // Files are indexed a moment after the recording ends: list again until they are there.
      for (;;) {
        listed = await page.$$eval('#recordings tbody tr[data-record]', (trs) => trs.map((tr) => ({
          id: tr.dataset.record,
          format: tr.children[3].textContent,
          duration: tr.children[2].textContent,
          download: tr.querySelector('a[data-download]')?.getAttribute('href') ?? null,
        })));
        const formats = new Set(listed.map((r) => r.format));
        if (formats.has('mp4') && formats.has('m3u8')) break;
        const error = await page.textContent('#action-error');
        if (error) throw new Error(`the list failed: ${error}`);
        if (Date.now() > deadline) throw new Error(`listed ${JSON.stringify(listed)}`);
        await page.waitForTimeout(500);
        await page.click('#recordings-form button[type=submit]');
      }
      await shot('recordings');
      return { listed };
    });

    for (const format of ['mp4', 'm3u8']) {
      await step(`play the ${format} recording to its end`, async () => {
        const record = listed.find((r) => r.format === format);
        await page.click(`button[data-play="${record.id}"]`);
        await page.waitForFunction(() => {
          const v = document.querySelector('#player');
          return v.readyState >= 2 && v.duration > 0;
        });
        // Faster than real time; the end is the end all the same.
        await page.evaluate(() => { document.querySelector('#player').playbackRate = 4; });
        await page.waitForFunction(() => document.querySelector('#player').ended, null, { timeout: left() });
        const played = await page.evaluate(() => {
          const v = document.querySelector('#player');
          const q = v.getVideoPlaybackQuality();
          return { duration: v.duration, currentTime: v.currentTime, frames: q.totalVideoFrames, width: v.videoWidth, height: v.videoHeight, status: document.querySelector('#player-status').textContent };
        });
        if (played.frames < 10 || played.width === 0) throw new Error(`played ${JSON.stringify(played)}`);
        await shot(`played-${format}`);
        return { played };
      });
    }

    await step('a failed callback is sent again', async () => {
      await page.click('nav button[data-tab="callbacks"]');
      await page.selectOption('#callbacks-form select[name=domain]', domain);
      await page.selectOption('#callbacks-form select[name=status]', 'failed');
      // The receiver refuses every callback: wait until one has been tried and listed.
      for (;;) {
        await page.click('#callbacks-form button[type=submit]');
        await page.waitForTimeout(500);
        if (await page.$('#callbacks button[data-resend]')) break;
        const error = await page.textContent('#action-error');
        if (error) throw new Error(`the list failed: ${error}`);
        if (Date.now() > deadline) throw new Error('no failed callback listed');
      }
      const eventId = await page.getAttribute('#callbacks button[data-resend]', 'data-resend');
      await page.click(`#callbacks button[data-resend="${eventId}"]`);
      await page.waitForFunction((id) => document.querySelector('#notice').textContent.includes(id), eventId);
      const outbox = await page.textContent('#outbox');
      await shot('callbacks');
      return { eventId, outbox };
    });

    await step('configs and health render', async () => {
      await page.click('nav button[data-tab="configs"]');
      await page.selectOption('#configs-form select[name=domain]', domain);
      await page.click('#configs-form button[type=submit]');
      await page.waitForSelector('#configs h3');
      await page.waitForFunction(() => document.querySelectorAll('#configs h3').length === 5);
      await shot('configs');
      await page.click('nav button[data-tab="health"]');
      await page.waitForSelector('#tab-health:not([hidden])');
      await shot('health');
    });

    await step('log out', async () => {
      await page.click('#logout');
      await page.waitForSelector('#login:not([hidden])');
      const status = await page.evaluate(async () => (await fetch('api/overview')).status);
      if (status !== 401) throw new Error(`overview after logout: HTTP ${status}`);
    });

    if (result.requests_with_secret.length) throw new Failure(`the secret was in a URL: ${result.requests_with_secret[0]}`);
    const pageErrors = result.console.filter((l) => l.startsWith('pageerror'));
    if (pageErrors.length) throw new Failure(`page errors: ${pageErrors.join('; ')}`);
    result.ok = true;
  } catch (e) {
    result.error = e.message;
    process.exitCode = e instanceof Failure ? e.code : 1;
  } finally {
    if (context) await context.close().catch(() => {});
    if (profile) await rm(profile, { recursive: true, force: true }).catch(() => {});
    process.stdout.write(JSON.stringify(result) + '\n');
  }
}

await main();
