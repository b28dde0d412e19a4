/**
 * npm run bench:link
 *
 * Two processes on loopback: a sender and a receiver. Measures frames/s and MiB/s over an
 * established Liaison link (Noise IK handshake, then encrypted transport frames through PeerLink,
 * with its rekey schedule and frame decoding) and, in the same run, over raw ws binary messages of
 * the same size. Rounds alternate raw and Noise so both see the same machine load; the ratio is
 * the median of per-round ratios. Ends with one JSON line.
 *
 * Each transfer starts with an untimed warm-up of a quarter of its frames.
 *
 * Options: --frames N (1 KiB frames per round, default 100000), --rounds N (default 5).
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { intOption, median } from './measure.ts';

const opt = (name: string, fallback: number) => intOption(process.argv.slice(2), name, fallback);
const FRAMES_1K = opt('frames', 100_000);
const ROUNDS = opt('rounds', 5);
const BIG = 64 * 1024 - 64; // a DATA body that fills most of a Noise message
const FRAMES_BIG = Math.max(200, Math.floor((FRAMES_1K * 1024) / BIG / 2));
const peer = new URL('./link-peer.ts', import.meta.url).pathname;

function run(args: string[]): {
  firstLine: Promise<Record<string, unknown>>;
  exit: Promise<void>;
  kill: () => void;
} {
  const p = spawn(process.execPath, ['--import', 'tsx', peer, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: p.stdout });
  const firstLine = new Promise<Record<string, unknown>>((resolve, reject) => {
    lines.once('line', (l) => resolve(JSON.parse(l) as Record<string, unknown>));
    p.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
  });
  const exit = new Promise<void>((resolve) => p.once('exit', () => resolve()));
  return { firstLine, exit, kill: () => p.kill('SIGKILL') };
}

/** One transfer: frames/s and MiB/s of payload. */
async function transfer(
  mode: 'raw' | 'noise',
  frames: number,
  size: number,
): Promise<{ fps: number; mibps: number }> {
  const server = run(['server', mode]);
  try {
    const { port, staticKey } = (await server.firstLine) as { port: number; staticKey: string };
    const client = run(['client', mode, String(port), staticKey, String(frames), String(size)]);
    const { seconds } = (await client.firstLine) as { seconds: number };
    await client.exit;
    return { fps: frames / seconds, mibps: (frames * size) / seconds / (1024 * 1024) };
  } finally {
    server.kill();
    await server.exit;
  }
}

const rows: { raw1k: number; noise1k: number; rawBig: number; noiseBig: number }[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const raw1k = await transfer('raw', FRAMES_1K, 1024);
  const noise1k = await transfer('noise', FRAMES_1K, 1024);
  const rawBig = await transfer('raw', FRAMES_BIG, BIG);
  const noiseBig = await transfer('noise', FRAMES_BIG, BIG);
  rows.push({
    raw1k: raw1k.fps,
    noise1k: noise1k.fps,
    rawBig: rawBig.mibps,
    noiseBig: noiseBig.mibps,
  });
  console.log(
    `round ${r + 1}: 1 KiB frames raw ${raw1k.fps.toFixed(0)}/s, noise ${noise1k.fps.toFixed(0)}/s; ` +
      `64 KiB frames raw ${rawBig.mibps.toFixed(0)} MiB/s, noise ${noiseBig.mibps.toFixed(0)} MiB/s`,
  );
}
const ratio = median(rows.map((x) => x.noise1k / x.raw1k));
const ratioBig = median(rows.map((x) => x.noiseBig / x.rawBig));
const m = (k: keyof (typeof rows)[number]) => median(rows.map((x) => x[k]));
console.log('');
console.log(
  `1 KiB frames:  noise ${m('noise1k').toFixed(0)}/s (${((m('noise1k') * 1024) / 1048576).toFixed(1)} MiB/s), raw ws ${m('raw1k').toFixed(0)}/s`,
);
console.log(
  `64 KiB frames: noise ${m('noiseBig').toFixed(0)} MiB/s, raw ws ${m('rawBig').toFixed(0)} MiB/s (ratio ${ratioBig.toFixed(3)})`,
);
console.log(
  `ratio (1 KiB frames, noise / raw): ${ratio.toFixed(3)} (median of ${ROUNDS} rounds; target >= 0.7)`,
);
console.log(
  JSON.stringify({
    bench: 'link',
    ratio: Number(ratio.toFixed(4)),
    noise_frames_per_s: Math.round(m('noise1k')),
    raw_frames_per_s: Math.round(m('raw1k')),
    noise_mib_per_s_1k: Number(((m('noise1k') * 1024) / 1048576).toFixed(1)),
    noise_mib_per_s_64k: Math.round(m('noiseBig')),
    raw_mib_per_s_64k: Math.round(m('rawBig')),
    ratio_64k: Number(ratioBig.toFixed(4)),
    frames_1k: FRAMES_1K,
    rounds: ROUNDS,
  }),
);
