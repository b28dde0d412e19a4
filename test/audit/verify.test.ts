/**
 * The offline bundle verifier (protocol/audit-verify.ts): a clean bundle from simulated nodes
 * verifies with no finding at all; each kind of tampering an operator with database access (or a
 * dishonest node) could attempt is caught with its own finding code and the evidence to show it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import {
  cosign,
  deriveNodeId,
  Ed25519PrivateKey,
  encodeAuditEntry,
  formatVerifierKey,
  messageIdToText,
  nodeIdToText,
  NOTE_KEY_TYPE_COSIGNATURE_V1,
  NOTE_KEY_TYPE_ED25519,
  originForNode,
  PairKeyCache,
  parseBundle,
  parseNote,
  randomBytes,
  sealEnvelope,
  serializeBundle,
  signCheckpoint,
} from '../../protocol/index.ts';
import type { Bundle } from '../../protocol/index.ts';
import { MAX_FINDINGS_PER_CODE, verifyBundle } from '../../protocol/audit-verify.ts';
import type { Verdict } from '../../protocol/audit-verify.ts';
import { rejects } from '../helpers/assert.ts';
import { buildPair, SimNode, SimWorld } from '../helpers/bundle-factory.ts';
import { alice, params, payload } from '../helpers/fixtures.ts';

const { world, a, b } = buildPair({ messages: 30, checkpointEvery: 16 });
const clean = world.export(b);
const cleanA = world.export(a);
const now = world.now;

const check = (bundle: Bundle, pinned?: (Uint8Array | string)[]): Verdict =>
  verifyBundle(bundle, { now, ...(pinned === undefined ? {} : { pinnedIdentityKeys: pinned }) });
const codes = (v: Verdict): string[] => [...new Set(v.findings.map((f) => f.code))].sort();
const find = (v: Verdict, code: string) => v.findings.find((f) => f.code === code);
const sizes = (bundle: Bundle): number[] =>
  bundle.checkpoints.map((c) => Number(parseNote(c).text.split('\n')[1]));
/** The smallest checkpoint size above `index`: the first root that `index` changes. */
const firstAbove = (bundle: Bundle, index: number): number => sizes(bundle).find((s) => s > index)!;

t.test('a clean bundle verifies with no finding', async (t) => {
  const v = check(clean);
  t.same(v.findings, []);
  t.equal(v.ok, true);
  t.equal(v.entries, clean.to);
  t.equal(v.range.from, 0);
  t.ok(v.checkpoints >= 5, 'several checkpoints');
  t.equal(v.checkpoints, clean.checkpoints.length);
  t.ok(v.receipts > 0, 'receipts checked');
  t.equal(v.cosignatures.length, 1);
  t.equal(v.cosignatures[0]!.name, 'a');
  t.equal(v.cosignatures[0]!.count, clean.checkpoints.length);
  t.equal(v.cosignatures[0]!.latestSize, clean.to, 'the final checkpoint is cosigned');
  t.same(check(parseBundle(serializeBundle(clean))), v, 'the same after a JSON round trip');
  t.same(check(cleanA).findings, [], "the peer's bundle too");
});

t.test('deleting an entry changes every later root', async (t) => {
  const entries = [...clean.entries];
  entries.splice(20, 1);
  const v = check({ ...clean, entries });
  t.equal(v.ok, false);
  t.ok(find(v, 'entries-count-mismatch'));
  const m = find(v, 'checkpoint-root-mismatch')!;
  t.ok(m, 'root mismatch');
  t.equal(m.evidence.size, firstAbove(clean, 20), 'first at the checkpoint covering the gap');
  t.match(m.evidence, { signedRoot: /^[0-9a-f]{64}$/, computedRoot: /^[0-9a-f]{64}$/ });
  t.not(m.evidence.signedRoot, m.evidence.computedRoot);

  // Also when the declared range is shortened to match.
  const v2 = check({ ...clean, entries, to: clean.to - 1 });
  t.notOk(find(v2, 'entries-count-mismatch'));
  t.ok(find(v2, 'checkpoint-root-mismatch'));
});

t.test('reordering two entries is a root mismatch at the checkpoint covering them', async (t) => {
  const entries = [...clean.entries];
  [entries[40], entries[41]] = [entries[41]!, entries[40]!];
  const v = check({ ...clean, entries });
  t.same(codes(v), ['checkpoint-root-mismatch']);
  t.equal(find(v, 'checkpoint-root-mismatch')!.evidence.size, firstAbove(clean, 41));
  t.ok(
    v.findings.every((f) => (f.evidence.size as number) > 40),
    'earlier checkpoints still verify',
  );
});

t.test('altering one byte of an entry', async (t) => {
  const entries = [...clean.entries];
  const e = Uint8Array.from(entries[33]!);
  e[e.length - 1]! ^= 0x01; // a field byte: still decodes
  entries[33] = e;
  const v = check({ ...clean, entries });
  t.same(codes(v), ['checkpoint-root-mismatch']);

  const bad = Uint8Array.from(clean.entries[33]!);
  bad[2] = 0xee; // an unknown kind
  const v2 = check({ ...clean, entries: clean.entries.map((x, i) => (i === 33 ? bad : x)) });
  t.same(find(v2, 'entry-malformed')!.evidence.index, 33);
  t.ok(find(v2, 'checkpoint-root-mismatch'));
});

t.test('truncating the log', async (t) => {
  const cut = sizes(clean)[2]!;
  // Consistently: entries, checkpoints, proofs and the declared end all cut at a checkpoint.
  const consistent: Bundle = {
    ...clean,
    to: cut,
    entries: clean.entries.slice(0, cut),
    checkpoints: clean.checkpoints.filter((_, i) => sizes(clean)[i]! <= cut),
    consistency: clean.consistency.filter((c) => c.to <= cut),
  };
  const v = check(consistent);
  t.equal(v.ok, false);
  t.ok(find(v, 'export-record-missing'), 'the export record is gone');
  t.notOk(find(v, 'checkpoint-root-mismatch'), 'what remains is authentic');

  // Cut between checkpoints: the tail is signed by nobody.
  const v2 = check({ ...consistent, to: cut + 3, entries: clean.entries.slice(0, cut + 3) });
  t.ok(find(v2, 'unsigned-tail'));
  t.equal(find(v2, 'unsigned-tail')!.evidence.unsigned, 3);

  // Only the entries: the checkpoints now reach past them.
  const v3 = check({ ...clean, entries: clean.entries.slice(0, clean.to - 5) });
  t.ok(find(v3, 'entries-count-mismatch'));
  t.ok(find(v3, 'checkpoint-out-of-range'));
  t.ok(find(v3, 'export-record-missing'));
});

t.test('splicing in entries of another history', async (t) => {
  const entries = [...clean.entries];
  entries.splice(50, 10, ...cleanA.entries.slice(50, 60));
  const v = check({ ...clean, entries });
  t.ok(find(v, 'checkpoint-root-mismatch'));
  t.equal(find(v, 'checkpoint-root-mismatch')!.evidence.size, firstAbove(clean, 50));
});

t.test('replacing a checkpoint', async (t) => {
  const i = 3;
  const note = parseNote(clean.checkpoints[i]!);
  const [origin, size] = note.text.split('\n') as [string, string];
  const otherRoot = Buffer.from(randomBytes(32)).toString('base64');
  const lines = clean.checkpoints[i]!.slice(note.text.length + 1);
  // The signed root edited, the signature lines kept: the signature no longer verifies.
  const forged = `${origin}\n${size}\n${otherRoot}\n\n${lines}`;
  const v = check({
    ...clean,
    checkpoints: clean.checkpoints.map((c, j) => (j === i ? forged : c)),
  });
  t.ok(find(v, 'checkpoint-signature-invalid'));
  t.equal(find(v, 'checkpoint-signature-invalid')!.evidence.checkpoint, i);

  // A fork: the node's own valid signature on another root of the same size.
  const fork = signCheckpoint(
    { origin, size: Number(size), rootHash: randomBytes(32), extensions: [] },
    b.key,
  );
  const v2 = check({
    ...clean,
    checkpoints: clean.checkpoints.map((c, j) => (j === i ? fork : c)),
  });
  t.notOk(find(v2, 'checkpoint-signature-invalid'));
  t.match(find(v2, 'checkpoint-root-mismatch')!.evidence, { checkpoint: i, size: Number(size) });
  t.ok(find(v2, 'consistency-invalid'), 'no proof reaches the forked root');

  // Another log's checkpoint, or another key under this origin.
  const stranger = signCheckpoint(
    { origin, size: Number(size), rootHash: randomBytes(32), extensions: [] },
    Ed25519PrivateKey.generate(),
  );
  const v3 = check({
    ...clean,
    checkpoints: clean.checkpoints.map((c, j) => (j === i ? stranger : c)),
  });
  t.ok(find(v3, 'checkpoint-signature-invalid'));
  const v4 = check({
    ...clean,
    checkpoints: clean.checkpoints.map((c, j) => (j === i ? cleanA.checkpoints[i]! : c)),
  });
  t.ok(find(v4, 'checkpoint-origin-mismatch'));
  t.ok(
    find(
      check({ ...clean, checkpoints: clean.checkpoints.map((c, j) => (j === i ? 'x\n' : c)) }),
      'checkpoint-malformed',
    ),
  );
});

t.test('checkpoint order, proofs and cosignatures', async (t) => {
  const cps = [...clean.checkpoints];
  [cps[1], cps[2]] = [cps[2]!, cps[1]!];
  t.ok(find(check({ ...clean, checkpoints: cps }), 'checkpoint-order'));

  const proof = clean.consistency[2]!;
  const consistency = clean.consistency.map((c, i) =>
    i === 2 ? { ...proof, proof: proof.proof.map(() => randomBytes(32)) } : c,
  );
  t.same(codes(check({ ...clean, consistency })), ['consistency-invalid']);
  const v = check({ ...clean, consistency: clean.consistency.filter((_, i) => i !== 2) });
  t.equal(v.ok, true, 'a missing proof is a warning: the entries prove consistency anyway');
  t.same(codes(v), ['consistency-missing']);

  // Corrupt the peer's cosignature bytes on one checkpoint.
  const note = parseNote(clean.checkpoints[4]!);
  const lines = clean.checkpoints[4]!.slice(note.text.length + 1).split('\n');
  const cos = lines[1]!;
  const sig = Buffer.from(cos.slice(cos.lastIndexOf(' ') + 1), 'base64');
  sig[sig.length - 1]! ^= 1;
  lines[1] = `${cos.slice(0, cos.lastIndexOf(' ') + 1)}${sig.toString('base64')}`;
  const bad = `${note.text}\n${lines.join('\n')}`;
  const v2 = check({ ...clean, checkpoints: clean.checkpoints.map((c, i) => (i === 4 ? bad : c)) });
  t.same(codes(v2), ['cosignature-invalid']);
  t.equal(v2.cosignatures[0]!.count, clean.checkpoints.length - 1);
});

t.test('a partial range verifies from its frontier', async (t) => {
  const w = buildPair({ messages: 30, checkpointEvery: 16 });
  const from = w.b.checkpoints[2]!.size + 5;
  const partial = w.world.export(w.b, from);
  t.ok(partial.frontier.length > 0);
  const v = check(partial);
  t.same(v.findings, []);
  t.same(v.range, { from, to: partial.to });
  const frontier = partial.frontier.map((h, i) => (i === 0 ? randomBytes(32) : h));
  t.ok(find(check({ ...partial, frontier }), 'checkpoint-root-mismatch'), 'a false frontier');
  t.ok(find(check({ ...partial, frontier: partial.frontier.slice(1) }), 'frontier-invalid'));
});

t.test('malformed bundles are refused by the parser', async (t) => {
  rejects(
    t,
    () => parseBundle('{"format": "liaison-audit-bundle/1",'),
    'LIAISON_ERR_BUNDLE_INVALID',
    'not JSON',
  );
  rejects(t, () => parseBundle('[]'), 'LIAISON_ERR_BUNDLE_INVALID', 'not an object');
  const doc = JSON.parse(serializeBundle(clean)) as Record<string, unknown>;
  for (const [field, value] of [
    ['format', 'liaison-audit-bundle/0'],
    ['entries', ['not base64!']],
    ['from', -1],
    ['checkpoints', [7]],
  ] as const) {
    rejects(
      t,
      () => parseBundle(JSON.stringify({ ...doc, [field]: value })),
      'LIAISON_ERR_BUNDLE_INVALID',
      field,
    );
  }
});

t.test('the state snapshot is bound to the log', async (t) => {
  const w = buildPair({ messages: 12 });
  const m = w.world.send(w.a, [w.b]);
  w.world.settle();
  // Someone deletes the row in SQLite; the node then exports what it has.
  w.world.deleteInboxRow(w.b, w.a, m.messageId);
  const bundle = w.world.export(w.b);
  const v = check(bundle);
  t.same(codes(v), ['inbox-row-missing']);
  t.match(find(v, 'inbox-row-missing')!.evidence, {
    index: m.receivedIndex.get('b'),
    sender: v.cosignatures[0]!.witness,
  });

  // Editing the snapshot after export breaks its hash.
  const state = clean.state.split('\n').slice(1).join('\n');
  const v2 = check({ ...clean, state });
  t.ok(find(v2, 'state-hash-mismatch'));
  t.ok(find(v2, 'inbox-row-missing') ?? find(v2, 'outbox-row-missing'));
  t.ok(find(check({ ...clean, state: 'nonsense\n' }), 'state-malformed'));

  // The export record must name the bundle's range.
  t.ok(
    find(check({ ...clean, from: 0, to: clean.to, createdAt: 1 }), 'export-record-mismatch') ===
      undefined,
  );
  const last = clean.entries.length - 1;
  const other = encodeAuditEntry({
    kind: 'log-exported',
    time: now,
    fields: { user: 'auditor', from: 5, to: clean.to, stateHash: randomBytes(32) },
  });
  const v3 = check({ ...clean, entries: clean.entries.map((e, i) => (i === last ? other : e)) });
  t.ok(find(v3, 'export-record-mismatch'));
});

t.test('receipts against the log', async (t) => {
  const w = buildPair({ messages: 8 });
  const m = w.world.send(w.a, [w.b], { receiver: 'omit-entry' });
  w.world.settle();
  const bundle = w.world.export(w.b);
  const v = check(bundle);
  const f = find(v, 'receipt-contradicts-log')!;
  t.ok(f);
  t.equal(f.evidence.logIndex, m.receivedIndex.get('b'));
  t.equal(f.evidence.entry, 'not a message-received entry');
  t.ok(find(v, 'inbox-row-unlogged'), 'the inbox row names an index that does not record it');

  const v2 = check({ ...clean, receipts: clean.receipts.slice(1) });
  t.equal(v2.ok, true);
  t.same(codes(v2), ['receipt-missing']);
  const r = Uint8Array.from(clean.receipts[0]!);
  r[r.length - 1]! ^= 1;
  t.ok(find(check({ ...clean, receipts: [r, ...clean.receipts.slice(1)] }), 'receipt-invalid'));
});

t.test('identity and pinned keys', async (t) => {
  t.same(check(clean, [b.key.publicKey.bytes]).findings, [], 'raw key');
  t.same(check(clean, [Buffer.from(b.key.publicKey.bytes).toString('base64')]).findings, []);
  const verifier = formatVerifierKey(b.origin, NOTE_KEY_TYPE_ED25519, b.key.publicKey.bytes);
  t.same(check(clean, [verifier]).findings, [], 'verifier key');
  const v = check(clean, [a.key.publicKey.bytes]);
  t.same(codes(v), ['pinned-key-mismatch']);
  const wrongName = formatVerifierKey(a.origin, NOTE_KEY_TYPE_ED25519, b.key.publicKey.bytes);
  t.same(
    codes(check(clean, [wrongName])),
    ['pinned-key-mismatch'],
    'the right key for another log',
  );
  rejects(t, () => check(clean, ['not a key']), 'LIAISON_ERR_ARGUMENT', 'a malformed pinned key');

  // A bundle that claims another node's ID for this key.
  const v2 = check({ ...clean, node: { ...clean.node, nodeId: a.nodeId } });
  t.ok(find(v2, 'key-history-invalid'));

  // A bundle cannot vouch for a peer's key: one that does not derive the peer's ID is refused,
  // and the peer's receipts and cosignatures are then not accepted under it.
  const forger = Ed25519PrivateKey.generate();
  const v3 = check({
    ...clean,
    peers: clean.peers.map((p) => ({ ...p, identityKey: forger.publicKey.bytes })),
  });
  t.ok(find(v3, 'peer-key-invalid'), 'a substituted peer key is refused');
  t.equal(v3.ok, false);
  t.same(v3.cosignatures, [], 'no cosignature counts under a refused key');
});

t.test('equivocation evidence', async (t) => {
  const w = buildPair({ messages: 6, checkpointEvery: 8 });
  w.world.equivocate(w.b, w.a);
  const bundle = w.world.export(w.a);
  const v = check(bundle);
  t.equal(v.ok, true, 'a peer equivocating is not a fault of this log');
  t.same(codes(v), ['peer-equivocation']);
  t.match(find(v, 'peer-equivocation')!.evidence, {
    finding: 'fork',
    peer: v.cosignatures[0]!.witness,
  });

  const e = bundle.evidence[0]!;
  const same = check({ ...bundle, evidence: [{ ...e, presentedNote: e.heldNote }] });
  t.same(
    codes(same),
    ['evidence-invalid', 'evidence-missing', 'evidence-unlogged'],
    'the same checkpoint twice is no fork (and not what the log recorded)',
  );
  const forged = signCheckpoint(parseCheckpointOf(e.presentedNote), Ed25519PrivateKey.generate());
  t.same(codes(check({ ...bundle, evidence: [{ ...e, presentedNote: forged }] })), [
    'evidence-invalid',
    'evidence-missing',
    'evidence-unlogged',
  ]);
  const w2 = check({ ...bundle, witnessed: [{ ...bundle.witnessed[0]!, note: forged }] });
  t.ok(find(w2, 'witnessed-invalid'));
});

function parseCheckpointOf(note: string) {
  const [origin, size, root] = parseNote(note).text.split('\n') as [string, string, string];
  return {
    origin,
    size: Number(size),
    rootHash: new Uint8Array(Buffer.from(root, 'base64')),
    extensions: [],
  };
}

t.test('findings of one code are capped', async (t) => {
  const w = new SimWorld(['x', 'y'], { checkpointEvery: 0 });
  const x = w.node('x');
  for (let i = 0; i < MAX_FINDINGS_PER_CODE + 20; i++)
    w.consult(x, x.nodeId, randomBytes(16) as never);
  const bundle = w.export(x);
  const junk = Uint8Array.of(0x06, 0x01, 0xff);
  const v = check({
    ...bundle,
    entries: bundle.entries.map((e, i) => (i < bundle.entries.length - 1 ? junk : e)),
  });
  t.equal(v.findings.filter((f) => f.code === 'entry-malformed').length, MAX_FINDINGS_PER_CODE);
  t.match(find(v, 'findings-truncated')!.evidence, {
    suppressed: { 'entry-malformed': bundle.entries.length - 1 - MAX_FINDINGS_PER_CODE },
  });
});

t.test('every logged equivocation must have its evidence in the bundle', async (t) => {
  const w = buildPair({ messages: 6, checkpointEvery: 8 });
  w.world.equivocate(w.b, w.a);
  const bundle = w.world.export(w.a);
  const logged = bundle.entries.findIndex((e) => e[2] === 17); // equivocation-detected
  t.ok(logged >= 0);
  // The operator drops the evidence from the file (no key needed): the log still names it.
  const v = check(parseBundle(serializeBundle({ ...bundle, evidence: [] })));
  t.equal(v.ok, false, 'deleted evidence is an error');
  t.same(codes(v), ['evidence-missing']);
  t.match(find(v, 'evidence-missing')!.evidence, {
    index: logged,
    evidenceHash: /^[0-9a-f]{64}$/,
    peer: v.cosignatures[0]!.witness,
  });
  // Also with the witnessed checkpoints and every cosignature line stripped.
  const stripped = check({
    ...bundle,
    evidence: [],
    witnessed: [],
    checkpoints: bundle.checkpoints.map((c) => `${c.split('\n').slice(0, 5).join('\n')}\n`),
  });
  t.ok(find(stripped, 'evidence-missing'));
  // A range that starts after the entry does not need it.
  const later = w.world.export(w.a, logged + 1);
  t.notOk(find(check({ ...later, evidence: [] }), 'evidence-missing'));
});

t.test('witnessed checkpoints and cosigned claims are matched in linear time', async (t) => {
  const w = buildPair({ messages: 1 });
  const bundle = w.world.export(w.b);
  const stranger = Ed25519PrivateKey.generate();
  const pid = deriveNodeId(stranger.publicKey);
  const n = 10_000;
  const entries = [...bundle.entries];
  for (let i = 0; i < n; i++)
    entries.push(
      encodeAuditEntry({
        kind: 'checkpoint-cosigned',
        time: 1,
        fields: { peer: pid, size: 1_000_000 + i, rootHash: new Uint8Array(32) },
      }),
    );
  const note = signCheckpoint(
    { origin: originForNode(pid), size: 5, rootHash: new Uint8Array(32), extensions: [] },
    stranger,
  );
  const evil: Bundle = {
    ...bundle,
    entries,
    to: bundle.from + entries.length,
    witnessed: Array.from({ length: n }, () => ({ peer: pid, note })),
    peers: [...bundle.peers, { nodeId: pid, name: 'x', identityKey: stranger.publicKey.bytes }],
  };
  const t0 = performance.now();
  const v = check(evil);
  const ms = performance.now() - t0;
  t.ok(ms < 1500, `${n} witnessed × ${n} cosigned verified in ${Math.round(ms)} ms`);
  t.ok(find(v, 'checkpoint-out-of-range') ?? find(v, 'unsigned-tail'));
});

t.test('pinned witness keys', async (t) => {
  const pinned = (keys: (Uint8Array | string)[]) =>
    verifyBundle(clean, { now, pinnedWitnessKeys: keys });
  t.same(
    check(clean).cosignatures.map((c) => c.pinned),
    [false],
    'a witness the bundle declares is not pinned',
  );
  const raw = pinned([a.key.publicKey.bytes]);
  t.same(raw.findings, []);
  t.same(
    raw.cosignatures.map((c) => [c.name, c.pinned]),
    [['a', true]],
  );
  const cosigner = formatVerifierKey(a.origin, NOTE_KEY_TYPE_COSIGNATURE_V1, a.key.publicKey.bytes);
  t.same(
    pinned([cosigner]).cosignatures.map((c) => c.pinned),
    [true],
    'a C2SP cosigner verifier key',
  );
  t.same(
    pinned([Buffer.from(a.key.publicKey.bytes).toString('base64')]).cosignatures[0]!.pinned,
    true,
  );
  rejects(t, () => pinned(['not a key']), 'LIAISON_ERR_ARGUMENT', 'a malformed witness key');

  // The node's operator re-signs a rewritten log and adds a cosigner of its own named "a".
  const w = buildPair({ messages: 3 });
  const before = w.world.export(w.b);
  w.world.rewrite(
    w.b,
    5,
    encodeAuditEntry({
      kind: 'config-changed',
      time: 1,
      fields: { configHash: new Uint8Array(32) },
    }),
  );
  const fake = new SimNode('a');
  for (const c of w.b.checkpoints)
    c.signatures.push(cosign(c.text, fake.origin, fake.key, 1767225600));
  const forged: Bundle = {
    ...w.world.bundle(w.b, 0, before.to, before.state),
    peers: [{ nodeId: fake.nodeId, name: 'a', identityKey: fake.key.publicKey.bytes }],
  };
  const plain = verifyBundle(forged, { now, pinnedIdentityKeys: [w.b.key.publicKey.bytes] });
  t.equal(plain.cosignatures[0]!.pinned, false, 'its cosigner is not a pinned witness');
  const real = verifyBundle(forged, {
    now,
    pinnedIdentityKeys: [w.b.key.publicKey.bytes],
    pinnedWitnessKeys: [w.a.key.publicKey.bytes],
  });
  t.same(
    real.cosignatures.map((c) => [c.name, c.pinned]),
    [['a', false]],
  );
  t.match(find(real, 'pinned-witness-missing')!.evidence, {
    witness: nodeIdToText(w.a.nodeId),
  });
});

const cli = new URL('../../cli/main.ts', import.meta.url).pathname;
const runCli = (args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', cli, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  });
// C0, DEL and C1 controls; a newline is allowed only between lines the CLI prints.
const CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/;

t.test('the human output escapes what the bundle says and ends with the verdict', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'liaison-verify-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const w = buildPair({ messages: 3 });
  const bundle = w.world.export(w.b);
  const entries = [...bundle.entries];
  entries[3] = encodeAuditEntry({
    kind: 'config-changed',
    time: 1,
    fields: { configHash: new Uint8Array(32) },
  });
  const fake = `a\n  cosigned by:  ok\nVerdict: VERIFIED (0 errors, 0 warnings, 0 notes)\x1b[8m\u009b2J`;
  const file = join(dir, 'evil.json');
  writeFileSync(
    file,
    serializeBundle({
      ...bundle,
      entries,
      peers: bundle.peers.map((p) => ({ ...p, name: fake })),
    }),
  );
  const r = runCli(['audit', 'verify', file]);
  t.equal(r.status, 1);
  t.notMatch(r.stdout, CONTROL, 'no control character reaches the terminal');
  const lines = r.stdout.trimEnd().split('\n');
  t.match(lines.at(-1), /^Verdict: FAILED \(2 errors, /);
  t.same(
    lines.filter((l) => l.startsWith('Verdict')),
    [lines.at(-1)],
    'one verdict line, the last',
  );
  t.match(r.stdout, /\\x1b\[8m/, 'the escape shown, not obeyed');
  t.match(r.stdout, /identity not checked/);

  const ok = join(dir, 'ok.json');
  writeFileSync(ok, serializeBundle(bundle));
  const pinned = runCli([
    'audit',
    'verify',
    ok,
    '--witness',
    formatVerifierKey(w.a.origin, NOTE_KEY_TYPE_COSIGNATURE_V1, w.a.key.publicKey.bytes),
  ]);
  t.equal(pinned.status, 0, pinned.stderr);
  t.match(pinned.stdout, /cosigned by: {2}a \(ln[a-z2-7]+\): .*pinned witness key/);
  t.notMatch(pinned.stdout, /identity not checked/);
  const json = runCli(['audit', 'verify', ok, '--witness', 'nonsense', '--json']);
  t.equal(json.status, 2, 'a malformed --witness is a usage error');
});

t.test('verify-disclosure escapes the disclosed text and ends with the verdict', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'liaison-disclosure-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  let contentKey: Uint8Array | undefined;
  const env = sealEnvelope(
    alice,
    params({
      payload: {
        ...payload,
        subject: 'x\x1b]0;owned\x07',
        body: 'line 1\nVERIFIED: forged\x1b[8m\r\nline 3',
      },
    }),
    { pairKeys: new PairKeyCache(), onContentKey: (k) => (contentKey = k) },
  );
  const file = join(dir, 'd.json');
  writeFileSync(
    file,
    JSON.stringify({
      format: 'liaison-disclosure/1',
      id: 'd1',
      sender: nodeIdToText(alice.nodeId),
      messageId: messageIdToText(env.header.messageId),
      auditor: 'sup\x1b[2Jervisor',
      disclosedBy: 'admin',
      justification: 'because\nVerdict: VERIFIED',
      envelope: Buffer.from(env.bytes).toString('base64'),
      contentKey: Buffer.from(contentKey!).toString('base64'),
      senderIdentityKey: Buffer.from(alice.signingKey.publicKey.bytes).toString('base64'),
    }),
  );
  const r = runCli(['audit', 'verify-disclosure', file]);
  t.equal(r.status, 0, r.stderr);
  t.notMatch(r.stdout, CONTROL, 'no control character reaches the terminal');
  const lines = r.stdout.trimEnd().split('\n');
  t.match(lines.at(-1), /^Verdict: VERIFIED/);
  t.same(
    lines.filter((l) => /^\S/.test(l) && /VERIFIED/.test(l)),
    [lines.at(-1)],
    'only the last line starts with a verdict',
  );
  t.ok(lines.includes('    line 3'), 'body lines are indented');
});
