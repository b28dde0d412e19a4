/**
 * npm run bench:delivery
 *
 * Two node processes on loopback (the test harness's real `liaison start`), paired. Measures:
 *
 * - sustained delivery: N messages of 1 KiB are queued at the sender while the receiver is down;
 *   the receiver starts, and the rate is N over the time from the link coming up to the last
 *   `delivered` status at the sender: every message sent, verified, durably stored (inbox and
 *   audit log, fsync'd), receipted, and the receipt verified and stored by the sender. Times are
 *   the nodes' own event timestamps, so the bench process's load does not count.
 * - submit: the API rate of POST /v1/messages at a concurrency of 32 (seal, sign, group commit).
 * - urgent latency: POST of one urgent message at the sender → its `message.received` event on
 *   the recipient's event stream, one at a time; p50 and p99.
 *
 * In the same run: the single-core Ed25519 verify rate (the baseline of the delivery ratio) and
 * the raw ws loopback round trip of 1 KiB (the floor under any latency). Ends with one JSON line.
 *
 * Options: --messages N (default 20000), --latency N (samples, default 300).
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createLocalIdentity, initCrypto, randomBytes } from '../protocol/index.ts';
import { Cluster } from '../test/harness/cluster.ts';
import type { TestNode } from '../test/harness/cluster.ts';
import { intOption, median, rate } from './measure.ts';

const opt = (name: string, fallback: number) => intOption(process.argv.slice(2), name, fallback);
const MESSAGES = opt('messages', 20_000);
const LATENCY_SAMPLES = opt('latency', 300);
const BODY = 'x'.repeat(1024);

await initCrypto();

function percentile(values: readonly number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

/** Single-core Ed25519 verify rate, through the protocol's crypto wrapper (OpenSSL). */
function verifyRate(): number {
  const id = createLocalIdentity(randomBytes(32), randomBytes(32), Date.now());
  const msg = randomBytes(200);
  const sig = id.signingKey.sign(msg);
  rate(300, () => id.signingKey.publicKey.verify(msg, sig));
  return median([1, 2, 3].map(() => rate(700, () => id.signingKey.publicKey.verify(msg, sig))));
}

/** Raw ws round trip of 1 KiB between this process and an echo server in another one. */
async function wsRoundTrip(samples: number): Promise<{ p50: number; p99: number }> {
  const server = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { WebSocketServer } from 'ws';
       const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
       wss.on('listening', () => console.log(wss.address().port));
       wss.on('connection', (ws) => ws.on('message', (m) => ws.send(m)));`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], cwd: process.cwd() },
  );
  try {
    const port = await new Promise<number>((resolve) =>
      createInterface({ input: server.stdout! }).once('line', (l) => resolve(Number(l))),
    );
    const { default: WebSocket } = await import('ws');
    const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
    await new Promise((r) => ws.once('open', r));
    const payload = Buffer.alloc(1024, 7);
    const times: number[] = [];
    for (let i = 0; i < samples + 50; i++) {
      const t0 = performance.now();
      await new Promise<void>((resolve) => {
        ws.once('message', () => resolve());
        ws.send(payload);
      });
      if (i >= 50) times.push(performance.now() - t0);
    }
    ws.close();
    return { p50: percentile(times, 50), p99: percentile(times, 99) };
  } finally {
    server.kill();
  }
}

interface SseEvent {
  id: number;
  type: string;
  data: Record<string, unknown>;
}

/** Reads a node's event stream, calling `on` for each event, until the returned stop is called. */
async function stream(
  node: TestNode,
  after: number,
  on: (e: SseEvent) => void,
): Promise<() => void> {
  const ctl = new AbortController();
  const res = await fetch(`http://127.0.0.1:${node.apiPort}/v1/events?after=${after}`, {
    headers: { authorization: `Bearer ${node.token}` },
    signal: ctl.signal,
  });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  void (async () => {
    let buffer = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += decoder.decode(value, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const f: Record<string, string> = {};
          for (const line of block.split('\n')) {
            const i = line.indexOf(': ');
            if (i > 0 && !line.startsWith(':')) f[line.slice(0, i)] = line.slice(i + 2);
          }
          if (f.id !== undefined)
            on({
              id: Number(f.id),
              type: f.event ?? '',
              data: JSON.parse(f.data ?? '{}') as Record<string, unknown>,
            });
        }
      }
    } catch {
      // aborted
    }
  })();
  return () => ctl.abort();
}

async function lastEventId(node: TestNode): Promise<number> {
  let last = 0;
  const stop = await stream(node, 0, (e) => (last = e.id));
  await new Promise((r) => setTimeout(r, 300));
  stop();
  return last;
}

const teardown: (() => unknown)[] = [];
const c = await Cluster.create(
  { teardown: (fn) => teardown.push(fn), comment: () => undefined },
  2,
);
try {
  const [a, b] = [c.node(0), c.node(1)];
  await c.pair(a, b);
  await c.waitFor(() => a.linkUp(b), 'link up');
  const officer = await a.officerToken();
  const post = (priority: string) =>
    fetch(`http://127.0.0.1:${a.apiPort}/v1/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${officer}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        to: [{ nodeId: b.nodeId, mailbox: '24-7' }],
        subject: 'bench',
        body: BODY,
        priority,
      }),
    }).then(async (r) => {
      if (r.status !== 200) throw new Error(`send: ${r.status} ${await r.text()}`);
      return ((await r.json()) as { messageId: string }).messageId;
    });

  // --- urgent latency (link up, nothing queued) ---
  const waiting = new Map<string, () => void>();
  const early = new Set<string>();
  const stopB = await stream(b, await lastEventId(b), (e) => {
    if (e.type !== 'message.received') return;
    const id = String(e.data.messageId);
    const done = waiting.get(id);
    if (done === undefined) early.add(id);
    else done();
  });
  const latencies: number[] = [];
  for (let i = 0; i < LATENCY_SAMPLES + 20; i++) {
    const t0 = performance.now();
    const arrived = new Promise<void>((resolve) => {
      void post('urgent').then((id) => {
        if (early.delete(id)) resolve();
        else waiting.set(id, resolve);
      });
    });
    await arrived;
    if (i >= 20) latencies.push(performance.now() - t0);
    await new Promise((r) => setTimeout(r, 5));
  }
  stopB();
  const p50 = percentile(latencies, 50);
  const p99 = percentile(latencies, 99);
  console.log(
    `urgent latency submit → recipient event   p50 ${p50.toFixed(2)} ms   p99 ${p99.toFixed(2)} ms`,
  );

  // --- submit rate and sustained delivery ---
  await b.stop();
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < MESSAGES) {
        next += 1;
        await post('routine');
      }
    }),
  );
  const submitPerS = MESSAGES / ((performance.now() - t0) / 1000);
  console.log(
    `submit (API, 32 concurrent)              ${submitPerS.toFixed(0).padStart(8)} messages/s`,
  );

  let upAt: number | null = null;
  let delivered = 0;
  let lastAt = 0;
  let resolveAll!: () => void;
  const all = new Promise<void>((r) => (resolveAll = r));
  const stopA = await stream(a, await lastEventId(a), (e) => {
    const at = Date.parse(String(e.data.at));
    if (e.type === 'peer.up') upAt ??= at;
    if (e.type === 'message.status' && e.data.status === 'delivered') {
      delivered += 1;
      lastAt = at;
      if (delivered === MESSAGES) resolveAll();
    }
  });
  await b.start();
  await all;
  stopA();
  const seconds = (lastAt - upAt!) / 1000;
  const deliveryPerS = MESSAGES / seconds;
  console.log(
    `sustained delivery (stored, receipted)   ${deliveryPerS.toFixed(0).padStart(8)} messages/s (${MESSAGES} in ${seconds.toFixed(2)} s)`,
  );

  const verify = verifyRate();
  console.log(`Ed25519 verify, one core (baseline)      ${verify.toFixed(0).padStart(8)} /s`);
  const ws = await wsRoundTrip(1000);
  console.log(
    `raw ws round trip 1 KiB                  p50 ${ws.p50.toFixed(3)} ms   p99 ${ws.p99.toFixed(3)} ms`,
  );
  const ratio = deliveryPerS / verify;
  console.log(
    `ratio delivery / verify: ${ratio.toFixed(3)} (target >= 0.5); latency p50 ${p50.toFixed(2)} ms (<= 5), p99 ${p99.toFixed(2)} ms (<= 25)`,
  );
  console.log(
    JSON.stringify({
      bench: 'delivery',
      ratio: Number(ratio.toFixed(4)),
      delivery_per_s: Math.round(deliveryPerS),
      submit_per_s: Math.round(submitPerS),
      ed25519_verify_per_s: Math.round(verify),
      p50_ms: Number(p50.toFixed(3)),
      p99_ms: Number(p99.toFixed(3)),
      ws_rtt_p50_ms: Number(ws.p50.toFixed(3)),
      ws_rtt_p99_ms: Number(ws.p99.toFixed(3)),
      messages: MESSAGES,
    }),
  );
  // Graceful stops, so that profiling runs (LIAISON_PROFILE_DIR) get their profiles written.
  await Promise.all([a.stop(), b.stop()]);
} finally {
  for (const fn of teardown) await fn();
}
