/**
 * npm run bench:audit
 *
 * Offline verification of an exported audit bundle (protocol/audit-verify.ts) against the target
 * of DESIGN.md §Targets: at least 0.8 × the single-core Ed25519 verify rate, in entries per
 * second. The bundle is a simulated node's (test/helpers/bundle-factory.ts): 100,000 entries of
 * two-way traffic with receipts, consultations, a checkpoint every 1,000 entries cosigned by the
 * peer, and the state snapshot. It is serialised and parsed back before timing, so the heap holds
 * what the CLI's would, not the simulation.
 *
 * Two bundles: the worst case, one receipt per envelope (a quiet link: every receipt is one more
 * signature to check per two or three entries), which gives the headline `ratio`; and receipts
 * batched 16 at a time (a busy link), `ratio_batched`. Verification is single-threaded: at one
 * receipt per envelope, signature checks are about two thirds of the time and the target is met
 * without worker threads, so the verifier stays one pure call.
 *
 * In the same rounds it measures the raw Ed25519 verify rate (OpenSSL through node:crypto and
 * libsodium; the baseline is the faster) and append throughput with checkpointing
 * (measureAppend). Each round's ratio is taken within the round (bench/measure.ts); the reported
 * ratio is the median. Ends with one JSON line.
 *
 * Options: --entries N (100000), --rounds N (3), --append N (entries per append round, 20000).
 */
import sodium from 'libsodium-wrappers-sumo';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  asMessageId,
  createLocalIdentity,
  Ed25519PrivateKey,
  initCrypto,
  parseBundle,
  randomBytes,
  serializeBundle,
} from '../protocol/index.ts';
import type { Bundle } from '../protocol/index.ts';
import { verifyBundle } from '../protocol/audit-verify.ts';
import { AuditLog } from '../node/audit-log.ts';
import { Checkpoints } from '../node/checkpoints.ts';
import { systemClock } from '../node/clock.ts';
import { EventLog } from '../node/events.ts';
import { Store } from '../node/store.ts';
import { buildPair } from '../test/helpers/bundle-factory.ts';
import { intOption, median, rate } from './measure.ts';

await initCrypto();
const argv = process.argv.slice(2);
const ENTRIES = intOption(argv, 'entries', 100_000);
const ROUNDS = intOption(argv, 'rounds', 3);
const APPEND = intOption(argv, 'append', 20_000);
const CHECKPOINT_EVERY = 1000;
const RAW_MS = 1500;

/** A bundle as an auditor receives it: JSON text, parsed once, the simulation gone. */
function makeBundle(receiptBatch: number): { bundle: Bundle; now: number; text: number } {
  const { world, b } = buildPair({
    entries: ENTRIES,
    receiptBatch,
    checkpointEvery: CHECKPOINT_EVERY,
  });
  const text = serializeBundle(world.export(b));
  const now = world.now;
  const bundle = parseBundle(text);
  return { bundle, now, text: text.length };
}

function verifyRate(bundle: Bundle, now: number): number {
  const start = performance.now();
  const v = verifyBundle(bundle, { now });
  const s = (performance.now() - start) / 1000;
  if (!v.ok || v.findings.length > 0) throw new Error('the benchmark bundle does not verify');
  return bundle.entries.length / s;
}

function parseRate(bundle: Bundle): number {
  const text = serializeBundle(bundle);
  const start = performance.now();
  parseBundle(text);
  return bundle.entries.length / ((performance.now() - start) / 1000);
}

const msg = new Uint8Array(32).fill(9);
const edKey = Ed25519PrivateKey.fromSeed(new Uint8Array(32).fill(5));
const edSig = edKey.sign(msg);
const kp = sodium.crypto_sign_seed_keypair(new Uint8Array(32).fill(5));
const sodiumSig = sodium.crypto_sign_detached(msg, kp.privateKey);
function rawVerify(): { openssl: number; sodium: number } {
  return {
    openssl: rate(RAW_MS, () => {
      if (!edKey.publicKey.verify(msg, edSig)) throw new Error('verify failed');
    }),
    sodium: rate(RAW_MS, () => {
      if (!sodium.crypto_sign_verify_detached(sodiumSig, msg, kp.publicKey))
        throw new Error('verify failed');
    }),
  };
}

/**
 * Append throughput with checkpointing, on the node's own store: a real SQLite database (WAL,
 * fsync'd commits) in a temporary directory, AuditLog.append (entry encoding, leaf hash, the
 * subtree hashes it completes) and Checkpoints.issue (tree hash from stored hashes, Ed25519
 * signature, stored note) every CHECKPOINT_EVERY entries. Appends are committed APPEND_BATCH to a
 * transaction, as the node's group commit does under load.
 */
const APPEND_BATCH = 100;
function measureAppend(count: number): number {
  const dir = mkdtempSync(join(tmpdir(), 'liaison-bench-audit-'));
  const clock = systemClock;
  const store = Store.open(join(dir, 'liaison.db'), clock);
  try {
    const identity = createLocalIdentity(randomBytes(32), randomBytes(32), clock.now());
    const audit = new AuditLog(store.database);
    const events = new EventLog(store.database, clock);
    const checkpoints = new Checkpoints({ store, audit, events, clock, identity: () => identity });
    const sender = identity.nodeId;
    const start = performance.now();
    for (let i = 0; i < count; i += APPEND_BATCH) {
      store.transaction(() => {
        for (let j = i; j < Math.min(count, i + APPEND_BATCH); j++)
          audit.append('message-received', 1_767_225_600_000 + j, {
            sender,
            messageId: asMessageId(randomBytes(16)),
            envelopeHash: randomBytes(32),
            sequence: j + 1,
          });
      });
      if (Math.floor((i + APPEND_BATCH) / CHECKPOINT_EVERY) > Math.floor(i / CHECKPOINT_EVERY))
        checkpoints.issue(true);
    }
    return count / ((performance.now() - start) / 1000);
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`building two ${ENTRIES}-entry bundles (receipts per envelope, and batched by 16)…`);
const worst = makeBundle(1);
const batched = makeBundle(16);
globalThis.gc?.();
console.log(
  `  per-envelope receipts: ${worst.bundle.receipts.length} receipts, ${worst.bundle.checkpoints.length} checkpoints, ${(worst.text / 1e6).toFixed(1)} MB`,
);
console.log(
  `  batched receipts:      ${batched.bundle.receipts.length} receipts, ${batched.bundle.checkpoints.length} checkpoints, ${(batched.text / 1e6).toFixed(1)} MB`,
);

// Warm-up: one verification of each, a short raw run, a short append run.
verifyRate(worst.bundle, worst.now);
verifyRate(batched.bundle, batched.now);
rate(300, () => edKey.publicKey.verify(msg, edSig));
measureAppend(Math.min(APPEND, 5000));

const rounds: {
  verify: number;
  batched: number;
  openssl: number;
  sodium: number;
  append: number;
}[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const verify = verifyRate(worst.bundle, worst.now);
  const raw = rawVerify();
  const b = verifyRate(batched.bundle, batched.now);
  const append = measureAppend(APPEND);
  rounds.push({ verify, batched: b, ...raw, append });
  const base = Math.max(raw.openssl, raw.sodium);
  console.log(
    `round ${r + 1}: verify ${verify.toFixed(0)} entries/s (batched ${b.toFixed(0)}), ` +
      `raw Ed25519 verify ${base.toFixed(0)}/s, ratio ${(verify / base).toFixed(2)}, append ${append.toFixed(0)} entries/s`,
  );
}

const baseline = (x: { openssl: number; sodium: number }) => Math.max(x.openssl, x.sodium);
const ratio = median(rounds.map((x) => x.verify / baseline(x)));
const ratioBatched = median(rounds.map((x) => x.batched / baseline(x)));
const verifyMedian = median(rounds.map((x) => x.verify));
const batchedMedian = median(rounds.map((x) => x.batched));
const rawMedian = median(rounds.map(baseline));
const appendMedian = median(rounds.map((x) => x.append));
const parse = parseRate(worst.bundle);
console.log('');
console.log(`verify, a receipt per envelope: ${verifyMedian.toFixed(0)} entries/s`);
console.log(`verify, receipts batched by 16: ${batchedMedian.toFixed(0)} entries/s`);
console.log(
  `raw Ed25519 verify/s:           ${rawMedian.toFixed(0)} (faster of OpenSSL ${median(rounds.map((x) => x.openssl)).toFixed(0)}, libsodium ${median(rounds.map((x) => x.sodium)).toFixed(0)})`,
);
console.log(
  `ratio:                          ${ratio.toFixed(3)} (median of ${ROUNDS} per-round ratios; target >= 0.8); batched ${ratioBatched.toFixed(3)}`,
);
console.log(
  `bundle parse:                   ${parse.toFixed(0)} entries/s (JSON, not in the ratio)`,
);
console.log(
  `append with checkpoints:        ${appendMedian.toFixed(0)} entries/s (SQLite, ${APPEND_BATCH} per commit)`,
);
console.log(
  JSON.stringify({
    bench: 'audit',
    ratio: Number(ratio.toFixed(4)),
    ratio_batched: Number(ratioBatched.toFixed(4)),
    verify_entries_per_s: Math.round(verifyMedian),
    verify_batched_entries_per_s: Math.round(batchedMedian),
    ed25519_verify_per_s: Math.round(rawMedian),
    append_entries_per_s: Math.round(appendMedian),
    parse_entries_per_s: Math.round(parse),
    entries: worst.bundle.entries.length,
    receipts: worst.bundle.receipts.length,
    receipts_batched: batched.bundle.receipts.length,
    checkpoints: worst.bundle.checkpoints.length,
    checkpoint_every: CHECKPOINT_EVERY,
    rounds: ROUNDS,
  }),
);
