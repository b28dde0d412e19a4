/**
 * npm run bench:protocol
 *
 * Seals and opens 1 KiB single-recipient envelopes (full acceptance path: decode, pinned key,
 * signature, recipient, times, replay state, unwrap, key commitment, decrypt, payload decode),
 * and in the same run measures raw Ed25519 sign + verify with both implementations we have
 * (OpenSSL via node:crypto and libsodium). The baseline is the faster of the two, so the ratio
 * can only be flattered by a slow baseline if both libraries are slow.
 *
 * For the design note on key wraps, it also measures a libsodium sealed box per recipient
 * (what the static-static pair key replaces).
 *
 * The contenders run in interleaved rounds (bench/measure.ts) and the ratio is the median of the
 * per-round ratios, so a burst of load from a neighbour on the shared machine hits both sides.
 *
 * Ends with one JSON line of the figures. Options: --seconds N, the total budget (default 12).
 */
import sodium from 'libsodium-wrappers-sumo';
import {
  acceptEnvelope,
  createLocalIdentity,
  Ed25519PrivateKey,
  equalBytes,
  initCrypto,
  PairKeyCache,
  sealEnvelope,
} from '../protocol/index.ts';
import type { ReceiverView, SealParams } from '../protocol/index.ts';
import { interleave, median, parseSeconds } from './measure.ts';

await initCrypto();
const seconds = parseSeconds(process.argv.slice(2), 12);
const ROUNDS = 15;
const sliceMs = (seconds * 1000) / ROUNDS / 4;

const T0 = 1_767_225_600_000; // 2026-01-01T00:00:00Z: a fixed clock keeps runs comparable
const sender = createLocalIdentity(new Uint8Array(32).fill(1), new Uint8Array(32).fill(2), T0);
const recipient = createLocalIdentity(new Uint8Array(32).fill(3), new Uint8Array(32).fill(4), T0);
const senderCache = new PairKeyCache();
const recipientCache = new PairKeyCache();
const body = 'x'.repeat(1024);

let sequence = 0;
function params(): SealParams {
  sequence += 1;
  return {
    kind: 'message',
    priority: 'urgent',
    handling: 'H0',
    author: 'duty-officer',
    createdAt: T0,
    expiresAt: T0 + 3_600_000,
    ref: null,
    recipients: [
      { nodeId: recipient.nodeId, dhKey: recipient.dhKey.publicKey, sequence, mailbox: '24-7' },
    ],
    payload: {
      subject: 'Urgent preservation request',
      body,
      language: 'en',
      caseRef: null,
      form: null,
      attachments: [],
    },
  };
}

let lastSeq = 0;
const view: ReceiverView = {
  pinnedIdentityKey: (n) => (equalBytes(n, sender.nodeId) ? sender.signingKey.publicKey : null),
  isCertifiedDhKey: (n, k) =>
    equalBytes(n, sender.nodeId) && equalBytes(k, sender.dhKey.publicKey.bytes),
  hasSeen: () => false,
  lastSequence: () => lastSeq,
};

function sealAndOpen(): void {
  const env = sealEnvelope(sender, params(), { pairKeys: senderCache });
  const accepted = acceptEnvelope(
    env.bytes,
    recipient,
    view,
    T0 + 1000,
    recipientCache,
    sender.nodeId,
  );
  lastSeq = env.header.recipients[0]!.sequence;
  if (accepted.payload.body.length !== body.length) throw new Error('round trip failed');
}

const msg = new Uint8Array(32).fill(9);
const edKey = Ed25519PrivateKey.fromSeed(new Uint8Array(32).fill(5));
function opensslSignVerify(): void {
  const sig = edKey.sign(msg);
  if (!edKey.publicKey.verify(msg, sig)) throw new Error('verify failed');
}

const kp = sodium.crypto_sign_seed_keypair(new Uint8Array(32).fill(5));
function sodiumSignVerify(): void {
  const sig = sodium.crypto_sign_detached(msg, kp.privateKey);
  if (!sodium.crypto_sign_verify_detached(sig, msg, kp.publicKey)) throw new Error('verify failed');
}

const boxKp = sodium.crypto_box_keypair();
const contentKey = new Uint8Array(32).fill(7);
function sealedBox(): void {
  const c = sodium.crypto_box_seal(contentKey, boxKp.publicKey);
  sodium.crypto_box_seal_open(c, boxKp.publicKey, boxKp.privateKey);
}

// Per-round ratios need the per-round rates; interleave() keeps medians, so collect rounds here.
const perRound: { env: number; openssl: number; sodium: number }[] = [];
const { rates } = interleave(
  {
    'envelope seal + open (1 KiB, 1 recipient)': () => sealAndOpen(),
    'raw Ed25519 sign + verify (OpenSSL)': () => opensslSignVerify(),
    'raw Ed25519 sign + verify (libsodium)': () => sodiumSignVerify(),
    'sealed box wrap + unwrap (per recipient)': () => sealedBox(),
  },
  ROUNDS,
  sliceMs,
  (round) => perRound.push({ env: round[0]!, openssl: round[1]!, sodium: round[2]! }),
);
const envelopeRate = rates['envelope seal + open (1 KiB, 1 recipient)']!;
const opensslRate = rates['raw Ed25519 sign + verify (OpenSSL)']!;
const sodiumRate = rates['raw Ed25519 sign + verify (libsodium)']!;
const sealedBoxRate = rates['sealed box wrap + unwrap (per recipient)']!;
const baseline = Math.max(opensslRate, sodiumRate);
// Within each round the baseline is the faster raw implementation of that round.
const ratio = median(perRound.map((r) => r.env / Math.max(r.openssl, r.sodium)));
console.log('');
console.log(`envelopes/s (seal + open):      ${envelopeRate.toFixed(0)}`);
console.log(
  `raw Ed25519 sign+verify/s:      ${baseline.toFixed(0)} (faster of OpenSSL ${opensslRate.toFixed(0)}, libsodium ${sodiumRate.toFixed(0)})`,
);
console.log(
  `ratio:                          ${ratio.toFixed(3)} (median of ${ROUNDS} per-round ratios; target >= 0.8)`,
);
console.log(
  JSON.stringify({
    bench: 'protocol',
    ratio: Number(ratio.toFixed(4)),
    envelopes_per_s: Math.round(envelopeRate),
    ed25519_sign_verify_per_s: Math.round(baseline),
    ed25519_openssl_sign_verify_per_s: Math.round(opensslRate),
    ed25519_libsodium_sign_verify_per_s: Math.round(sodiumRate),
    sealed_box_wrap_unwrap_per_s: Math.round(sealedBoxRate),
    rounds: ROUNDS,
    seconds,
  }),
);
