/**
 * Feeds random and mutated bytes to every decoder and to the full acceptance path. The only
 * allowed outcomes are a decoded value or a LiaisonError from the registry: never a TypeError,
 * a RangeError, a hang, or an allocation driven by an attacker's length field.
 *
 * Bounded in time: LIAISON_FUZZ_MS (default 4000) split across the targets; `npm run test:fuzz`
 * runs 60 s. The seed is printed and can be replayed with LIAISON_FUZZ_SEED.
 */
import t from 'tap';
import {
  acceptEnvelope,
  createReceipt,
  decodeEnvelope,
  decodeHeader,
  decodeKeyRecord,
  decodeKeyRotation,
  decodePayload,
  decodeReceipt,
  encodePayload,
  ERROR_CODES,
  LiaisonError,
  PairKeyCache,
  createKeyRotation,
  Ed25519PrivateKey,
} from '../../protocol/index.ts';
import { alice, bob, carol, payload, seal, T0, TestView } from '../helpers/fixtures.ts';

const budgetMs = Number(process.env.LIAISON_FUZZ_MS ?? 4000);
const seed = Number(process.env.LIAISON_FUZZ_SEED ?? Date.now() % 2 ** 31);
t.comment(`fuzz seed ${seed} (replay with LIAISON_FUZZ_SEED=${seed}), budget ${budgetMs} ms`);

/** xorshift32: small, seedable, good enough to drive mutations. */
function prng(s: number): () => number {
  let x = s || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}
const rand = prng(seed);
const below = (n: number) => rand() % Math.max(1, n);

const INTERESTING = [0x00, 0x01, 0x02, 0x7f, 0x80, 0xfe, 0xff];

function mutate(input: Uint8Array): Uint8Array {
  let b = Uint8Array.from(input);
  const rounds = 1 + below(4);
  for (let i = 0; i < rounds; i++) {
    switch (below(7)) {
      case 0: // flip a bit
        if (b.length > 0) b[below(b.length)]! ^= 1 << below(8);
        break;
      case 1: // interesting byte
        if (b.length > 0) b[below(b.length)] = INTERESTING[below(INTERESTING.length)]!;
        break;
      case 2: // truncate
        b = b.subarray(0, below(b.length + 1));
        break;
      case 3: {
        // extend with random bytes
        const extra = Uint8Array.from({ length: 1 + below(16) }, () => below(256));
        const n = new Uint8Array(b.length + extra.length);
        n.set(b);
        n.set(extra, b.length);
        b = n;
        break;
      }
      case 4: {
        // delete a run
        const at = below(b.length);
        const end = Math.min(b.length, at + 1 + below(8));
        const n = new Uint8Array(b.length - (end - at));
        n.set(b.subarray(0, at));
        n.set(b.subarray(end), at);
        b = n;
        break;
      }
      case 5: // max out a 4-byte window (a length field, perhaps)
        if (b.length >= 4) {
          const at = below(b.length - 3);
          b.fill(0xff, at, at + 4);
        }
        break;
      default: {
        // duplicate a run (repeat a field)
        const at = below(b.length);
        const run = b.subarray(at, at + 1 + below(40));
        const n = new Uint8Array(b.length + run.length);
        n.set(b.subarray(0, at + run.length));
        n.set(run, at + run.length);
        n.set(b.subarray(at + run.length), at + 2 * run.length);
        b = n;
        break;
      }
    }
  }
  return b;
}

const known = new Set<string>(ERROR_CODES);
const env = seal(alice, {}, [bob, carol]);
const receipt = createReceipt(bob.signingKey, bob.nodeId, alice.nodeId, T0, [
  { messageId: env.header.messageId, envelopeHash: env.envelopeHash, logIndex: 3 },
]);
const rotation = createKeyRotation(
  alice.nodeId,
  1,
  alice.signingKey,
  Ed25519PrivateKey.fromSeed(new Uint8Array(32).fill(9)),
  T0,
);
const view = new TestView(alice);
const pairKeys = new PairKeyCache();

/**
 * Targets; `signed` marks those where every byte is covered by a signature or by structure, so
 * an accepted input must be byte-identical to the sample (no malleability).
 */
const targets: [string, Uint8Array, (b: Uint8Array) => unknown, boolean][] = [
  [
    'envelope (accept path)',
    env.bytes,
    (b) => acceptEnvelope(b, bob, view, T0 + 1, pairKeys, alice.nodeId),
    true,
  ],
  ['envelope (decode)', env.bytes, decodeEnvelope, false],
  ['header', env.headerBytes, decodeHeader, false],
  [
    'payload',
    encodePayload({
      ...payload,
      form: { formId: 'f', formVersion: 1, fields: [{ name: 'a', value: 'x' }] },
    }),
    decodePayload,
    false,
  ],
  ['receipt', receipt.bytes, decodeReceipt, false],
  ['key record', alice.keyRecord.bytes, decodeKeyRecord, true],
  ['key rotation', rotation.bytes, decodeKeyRotation, true],
];

for (const [name, sample, decode, signed] of targets) {
  t.test(name, async (t) => {
    const until = performance.now() + budgetMs / targets.length;
    let runs = 0;
    const codes = new Map<string, number>();
    const check = (input: Uint8Array) => {
      try {
        decode(input);
        codes.set('(accepted)', (codes.get('(accepted)') ?? 0) + 1);
        if (signed && Buffer.compare(Buffer.from(input), Buffer.from(sample)) !== 0) {
          t.fail(
            `seed ${seed}: ${name} accepted a modified input ${Buffer.from(input).toString('hex').slice(0, 400)}`,
          );
        }
      } catch (err) {
        if (!(err instanceof LiaisonError) || !known.has(err.code)) {
          t.fail(
            `seed ${seed}: ${name} threw ${String(err)} on ${Buffer.from(input).toString('hex').slice(0, 400)}`,
          );
          throw err;
        }
        codes.set(err.code, (codes.get(err.code) ?? 0) + 1);
      }
      runs += 1;
    };
    while (performance.now() < until) {
      check(mutate(sample));
      check(Uint8Array.from({ length: below(64) }, () => below(256)));
    }
    t.ok(runs > 0, `${runs} inputs`);
    t.comment(`${name}: ${[...codes].map(([c, n]) => `${c}=${n}`).join(' ')}`);
  });
}
