/**
 * Cross-checking two nodes' bundles (protocol/audit-cross-check.ts): a clean pair agrees on every
 * message; each way one side can lose, alter, invent or rewrite is named, in the right direction,
 * with the indexes, hashes and receipt that prove it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import {
  encodeAuditEntry,
  messageIdToText,
  nodeIdToText,
  serializeBundle,
  signCheckpoint,
  toHex,
} from '../../protocol/index.ts';
import { crossCheck } from '../../protocol/audit-cross-check.ts';
import type { CrossReport } from '../../protocol/audit-cross-check.ts';
import { buildPair } from '../helpers/bundle-factory.ts';

const only = (r: CrossReport, code: string) => r.findings.filter((f) => f.code === code);
const faults = (r: CrossReport) => r.findings.filter((f) => f.severity !== 'info');

t.test('a clean pair agrees on every message', async (t) => {
  const { world, a, b } = buildPair({ messages: 25, checkpointEvery: 16, receiptBatch: 3 });
  const bb = world.export(b);
  const ba = world.export(a);
  const r = crossCheck(ba, bb, { now: world.now });
  t.equal(r.ok, true);
  t.same(r.findings, []);
  t.same(r.messages, { aToB: 25, bToA: 25 });
  t.equal(r.a.ok && r.b.ok, true);
  const swapped = crossCheck(bb, ba, { now: world.now });
  t.same(swapped.findings, [], 'either order');
  t.same(crossCheck(ba, bb, { now: world.now, pinnedB: [a.key.publicKey.bytes] }).b.ok, false);
});

t.test('a row deleted from the inbox', async (t) => {
  const { world, a, b } = buildPair({ messages: 10, checkpointEvery: 8 });
  const m = world.send(a, [b]);
  world.settle();
  world.send(b, [a]);
  world.deleteInboxRow(b, a, m.messageId);
  const bb = world.export(b);
  const ba = world.export(a);
  const r = crossCheck(ba, bb, { now: world.now });
  t.equal(r.ok, false);
  t.ok(
    r.b.findings.some((f) => f.code === 'inbox-row-missing'),
    "B's own verdict sees it",
  );
  const [f] = only(r, 'sent-but-not-received');
  t.equal(faults(r).length, 1);
  t.equal(f!.direction, 'a-to-b');
  t.match(f!.evidence, {
    reason: 'deleted-from-inbox',
    messageId: messageIdToText(m.messageId),
    sender: nodeIdToText(a.nodeId),
    receiver: nodeIdToText(b.nodeId),
    sent: { index: Number },
    received: { index: m.receivedIndex.get('b'), checkpointSize: Number },
    sentEnvelopeHash: toHex(m.envelopeHash),
    receivedEnvelopeHash: toHex(m.envelopeHash),
    receipt: String,
    receiptIssuer: nodeIdToText(b.nodeId),
    receiptLogIndex: m.receivedIndex.get('b'),
  });
  const rcv = f!.evidence.received as { index: number; checkpointSize: number };
  t.ok(rcv.checkpointSize > rcv.index, 'a checkpoint commits to the entry');
});

t.test("the receiver's log lacks the entry its receipt names", async (t) => {
  const { world, a, b } = buildPair({ messages: 10, checkpointEvery: 8 });
  const m = world.send(a, [b], { receiver: 'omit-entry' });
  world.settle();
  const bb = world.export(b);
  const ba = world.export(a);
  const r = crossCheck(ba, bb, { now: world.now });
  const [f] = only(r, 'sent-but-not-received');
  t.ok(f);
  t.match(f!.evidence, {
    reason: 'receipt-contradicts-log',
    messageId: messageIdToText(m.messageId),
    receiptLogIndex: m.receivedIndex.get('b'),
    receiverEntry: { index: m.receivedIndex.get('b'), kind: 'message-consulted' },
    receiptIssuer: nodeIdToText(b.nodeId),
  });
  t.ok(r.b.findings.some((x) => x.code === 'receipt-contradicts-log'));
});

t.test('an altered envelope hash', async (t) => {
  const { world, a, b } = buildPair({ messages: 10 });
  const m = world.send(a, [b], { receiver: 'alter-hash' });
  world.settle();
  const bb = world.export(b);
  const ba = world.export(a);
  const r = crossCheck(ba, bb, { now: world.now });
  t.equal(r.b.ok, true, "B's log is self-consistent");
  const [f] = only(r, 'altered');
  t.equal(faults(r).length, 1);
  t.match(f!.evidence, {
    messageId: messageIdToText(m.messageId),
    sentEnvelopeHash: toHex(m.envelopeHash),
    receivedEnvelopeHash: /^[0-9a-f]{64}$/,
  });
  t.not(f!.evidence.receivedEnvelopeHash, f!.evidence.sentEnvelopeHash);
});

t.test('a message never sent, logged as received', async (t) => {
  const { world, a, b } = buildPair({ messages: 10 });
  const m = world.fabricateReceived(b, a);
  world.tick(10);
  const bb = world.export(b);
  const ba = world.export(a);
  const r = crossCheck(ba, bb, { now: world.now });
  const [f] = only(r, 'received-but-not-sent');
  t.equal(faults(r).length, 1);
  t.equal(f!.direction, 'a-to-b');
  t.match(f!.evidence, {
    messageId: messageIdToText(m.messageId),
    received: { index: m.index },
    senderOutboxStatus: null,
  });
});

t.test('undelivered messages', async (t) => {
  const { world, a, b } = buildPair({ messages: 10 });
  const queued = world.send(a, [b], { deliver: false });
  const expired = world.send(a, [b], { deliver: false, expire: true });
  const bb = world.export(b);
  const ba = world.export(a);
  const r = crossCheck(ba, bb, { now: world.now });
  t.equal(r.ok, true, 'undelivered is not a fault of either log');
  const u = only(r, 'undelivered');
  t.equal(u.length, 2);
  t.match(u.find((f) => f.evidence.messageId === messageIdToText(queued.messageId))!.evidence, {
    status: 'queued',
  });
  t.match(u.find((f) => f.evidence.messageId === messageIdToText(expired.messageId))!.evidence, {
    status: 'expired',
    failure: { status: 'expired', code: 'LIAISON_ERR_ENVELOPE_EXPIRED', index: Number },
  });
});

t.test('a rewritten history contradicts what the peer witnessed', async (t) => {
  const { world, a, b } = buildPair({ messages: 20, checkpointEvery: 8 });
  const forged = encodeAuditEntry({
    kind: 'message-consulted',
    time: world.now,
    fields: { user: 'nobody', sender: a.nodeId, messageId: world.send(a, [b]).messageId },
  });
  world.settle();
  world.rewrite(b, 5, forged);
  const bb = world.export(b);
  const ba = world.export(a);
  const r = crossCheck(ba, bb, { now: world.now });
  t.equal(r.b.findings.filter((f) => f.severity === 'error').length, 0, 'B alone looks fine');
  const lr = only(r, 'log-rewritten');
  t.ok(lr.length > 0);
  t.equal(lr[0]!.direction, 'a-to-b');
  t.match(lr[0]!.evidence, {
    holder: nodeIdToText(a.nodeId),
    log: nodeIdToText(b.nodeId),
    size: Number,
    claimedRoot: /^[0-9a-f]{64}$/,
    bundleRoot: /^[0-9a-f]{64}$/,
  });

  // Rolled back to an old backup: smaller than checkpoints A cosigned before the export.
  const w2 = buildPair({ messages: 20, checkpointEvery: 8 });
  const big = w2.b.checkpoints[w2.b.checkpoints.length - 1]!.size;
  w2.world.truncate(w2.b, big - 10);
  const r2 = crossCheck(w2.world.export(w2.a), w2.world.export(w2.b), { now: w2.world.now });
  t.ok(
    only(r2, 'log-rewritten').some((f) => f.evidence.size === big && 'exportedSize' in f.evidence),
  );
});

t.test('messages outside the other range are not covered, not faults', async (t) => {
  const { world, a, b } = buildPair({ messages: 20, checkpointEvery: 8 });
  const from = b.size - 10;
  world.send(a, [b]);
  world.settle();
  const bb = world.export(b, from);
  const ba = world.export(a);
  const r = crossCheck(ba, bb, { now: world.now });
  t.same(faults(r), []);
  t.equal(r.ok, true);
  t.ok(only(r, 'not-covered').length > 10);
});

t.test('a peer key the other node does not hold', async (t) => {
  const { world, a, b } = buildPair({ messages: 3 });
  const bb = world.export(b);
  const ba = world.export(a);
  const peers = ba.peers.map((p) => ({ ...p, identityKey: a.key.publicKey.bytes }));
  const r = crossCheck({ ...ba, peers }, bb, { now: world.now });
  t.equal(only(r, 'peer-key-mismatch').length, 1);
});

t.test('only signed times decide whether a witnessed checkpoint predates the export', async (t) => {
  // B cosigns A at size N, then exports a recent range that starts after that entry.
  const { world, a, b } = buildPair({ messages: 4, checkpointEvery: 0 });
  const big = world.checkpoint(a);
  for (let i = 0; i < 5; i++) world.consult(b, a.nodeId, new Uint8Array(16) as never);
  const eb = world.export(b, b.size - 3);
  t.ok(eb.witnessed.length > 0 && eb.from > 0);
  // A later restores an old backup and exports a log shorter than what B witnessed.
  world.tick(60_000);
  world.truncate(a, big.size - 10);
  const ea = world.export(a);
  const rewritten = (r: CrossReport) =>
    only(r, 'log-rewritten').filter((f) => f.evidence.size === big.size);
  for (const createdAt of [ea.createdAt, 0, eb.createdAt + 1e9]) {
    const r = crossCheck(
      { ...ea, createdAt },
      { ...eb, createdAt: 2 * eb.createdAt - createdAt },
      {
        now: world.now,
      },
    );
    t.equal(rewritten(r).length, 1, `A's createdAt ${createdAt}: still log-rewritten`);
    t.equal(r.ok, false);
  }

  // The other way round: B witnessed A's larger checkpoint only after A's export.
  const w = buildPair({ messages: 4, checkpointEvery: 0 });
  const early = w.world.export(w.a);
  w.world.tick(60_000);
  for (let i = 0; i < 3; i++) w.world.consult(w.a, w.b.nodeId, new Uint8Array(16) as never);
  const after = w.world.checkpoint(w.a); // after the export: larger than the exported log
  t.ok(after.size > early.to);
  for (let i = 0; i < 5; i++) w.world.consult(w.b, w.a.nodeId, new Uint8Array(16) as never);
  const late = w.world.export(w.b, w.b.size - 3);
  for (const createdAt of [0, late.createdAt]) {
    const r = crossCheck(early, { ...late, createdAt }, { now: w.world.now });
    t.same(only(r, 'log-rewritten'), [], `B's createdAt ${createdAt}: no accusation`);
  }
});

t.test("a peer's equivocation is surfaced, and its evidence cannot be dropped", async (t) => {
  const { world, a, b } = buildPair({ messages: 4 });
  world.checkpoint(a);
  world.equivocate(a, b);
  const eb = world.export(b);
  const ea = world.export(a);
  const r = crossCheck(ea, eb, { now: world.now });
  t.equal(r.b.ok, true, "B's own log is fine");
  const eq = only(r, 'peer-equivocation');
  t.equal(eq.length, 1);
  t.equal(eq[0]!.direction, 'b-to-a');
  t.equal(eq[0]!.severity, 'error');
  t.match(eq[0]!.evidence, {
    holder: nodeIdToText(b.nodeId),
    log: nodeIdToText(a.nodeId),
    finding: 'fork',
  });
  t.equal(r.ok, false);
  const dropped = crossCheck(ea, { ...eb, evidence: [] }, { now: world.now });
  t.equal(dropped.ok, false);
  t.ok(dropped.b.findings.some((f) => f.code === 'evidence-missing'));
});

t.test('claims are matched in linear time', async (t) => {
  const { world, a, b } = buildPair({ messages: 1 });
  const ea = world.export(a);
  const eb = world.export(b);
  const n = 10_000;
  const entries = [...eb.entries];
  for (let i = 0; i < n; i++)
    entries.push(
      encodeAuditEntry({
        kind: 'checkpoint-cosigned',
        time: 1,
        fields: { peer: a.nodeId, size: 1_000_000 + i, rootHash: new Uint8Array(32) },
      }),
    );
  const note = signCheckpoint(
    { origin: a.origin, size: 5, rootHash: new Uint8Array(32), extensions: [] },
    a.key,
  );
  const evil = {
    ...eb,
    entries,
    to: eb.from + entries.length,
    witnessed: Array.from({ length: n }, () => ({ peer: a.nodeId, note })),
  };
  const t0 = performance.now();
  const r = crossCheck(ea, evil, { now: world.now });
  const ms = performance.now() - t0;
  t.ok(ms < 2000, `${n} witnessed × ${n} cosigned cross-checked in ${Math.round(ms)} ms`);
  t.ok(only(r, 'log-rewritten').length > 0);
});

t.test('cross-check pins keys from the command line', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'liaison-cross-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { world, a, b } = buildPair({ messages: 3 });
  const fileA = join(dir, 'a.json');
  const fileB = join(dir, 'b.json');
  writeFileSync(fileB, serializeBundle(world.export(b)));
  writeFileSync(fileA, serializeBundle(world.export(a)));
  const b64 = (k: Uint8Array) => Buffer.from(k).toString('base64');
  const cli = new URL('../../cli/main.ts', import.meta.url).pathname;
  const run = (args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', cli, 'audit', 'cross-check', ...args], {
      encoding: 'utf8',
      timeout: 60_000,
    });
  const ok = run([
    fileA,
    fileB,
    '--key-a',
    b64(a.key.publicKey.bytes),
    '--witness',
    b64(b.key.publicKey.bytes),
  ]);
  t.equal(ok.status, 0, ok.stderr);
  t.match(ok.stdout, /pinned witness key/);
  t.match(ok.stdout.trimEnd().split('\n').at(-1), /^Verdict: CONSISTENT/);
  const bad = run([fileA, fileB, '--key-b', b64(a.key.publicKey.bytes), '--json']);
  t.equal(bad.status, 1);
  const report = JSON.parse(bad.stdout) as CrossReport;
  t.ok(report.b.findings.some((f) => f.code === 'pinned-key-mismatch'));
  t.ok(report.a.cosignatures.every((c) => !c.pinned));
  t.equal(run([fileA, fileB, '--key-a', 'nonsense']).status, 2);
});
