/**
 * Witnessing and export between real node processes on loopback:
 *
 * - two peers cosign each other's checkpoints; each holds the other's as its witness;
 * - both nodes' exports verify offline and cross-check clean; an inbox row deleted directly in
 *   SQLite is then reported by the cross-check, with the evidence, and by the receiver's own
 *   bundle;
 * - a node whose audit log is edited behind its back (an entry deleted, the rest renumbered and
 *   the tree rebuilt, as a careful intruder would) is caught by its peer at the next checkpoint
 *   exchange: the peer refuses to cosign and keeps both signed checkpoints as evidence; the node
 *   itself reports that its log no longer matches its last checkpoint.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import t from 'tap';
import { messageIdFromText, parseBundle } from '../../protocol/index.ts';
import type { Bundle } from '../../protocol/index.ts';
import { crossCheck } from '../../protocol/audit-cross-check.ts';
import { verifyBundle } from '../../protocol/audit-verify.ts';
import { buildAuditTree } from '../../node/migrations.ts';
import { DATABASE_FILE } from '../../node/node.ts';
import { Cluster } from '../harness/cluster.ts';
import type { TestNode } from '../harness/cluster.ts';

const FAST = { env: { LIAISON_CHECKPOINT_INTERVAL_MS: '200' } };

async function delivered(c: Cluster, from: TestNode, ids: readonly string[], to: TestNode) {
  await c.waitFor(
    async () => {
      for (const id of ids) if ((await from.statuses(id))[to.nodeId] !== 'delivered') return false;
      return true;
    },
    `${ids.length} delivered to ${to.name}`,
    30_000,
  );
}

/** Whether `node`'s newest checkpoint carries a cosignature by `witness`. */
async function cosignedBy(node: TestNode, witness: TestNode): Promise<boolean> {
  const r = await node.api('GET', '/v1/audit');
  const cp = r.body.checkpoint as { cosignatures: { witness: string }[] } | null;
  return cp !== null && cp.cosignatures.some((c) => c.witness === witness.nodeId);
}

async function exportOf(node: TestNode): Promise<Bundle> {
  const r = await node.api('POST', '/v1/audit/export', {});
  if (r.status !== 200) throw new Error(`export: ${r.status} ${JSON.stringify(r.body)}`);
  return parseBundle(r.body);
}

const errors = (findings: readonly { severity: string; code: string }[]) =>
  findings.filter((f) => f.severity === 'error').map((f) => f.code);

t.test('peers cosign, exports verify and cross-check; a deleted inbox row is found', async (t) => {
  const c = await Cluster.create(t, 2, FAST);
  const [a, b] = [c.node(0), c.node(1)];
  await c.pair(a, b);
  await c.waitFor(() => a.linkUp(b), 'link up');
  const sent = [await a.send([b], 'one'), await a.send([b], 'two'), await a.send([b], 'three')];
  const back = await b.send([a], 'answer');
  await delivered(c, a, sent, b);
  await delivered(c, b, [back], a);

  await c.waitFor(() => cosignedBy(a, b), "b cosigns a's newest checkpoint");
  await c.waitFor(() => cosignedBy(b, a), "a cosigns b's newest checkpoint");
  const held = (await a.api('GET', '/v1/audit/witnessed')).body.witnessed as { peer: string }[];
  t.same(
    held.map((w) => w.peer),
    [b.nodeId],
    "a holds b's checkpoint as its witness",
  );

  const [bundleA, bundleB] = [await exportOf(a), await exportOf(b)];
  const now = Date.now();
  const va = verifyBundle(bundleA, { now });
  const vb = verifyBundle(bundleB, { now });
  t.same(errors(va.findings), [], "a's bundle verifies");
  t.same(errors(vb.findings), [], "b's bundle verifies");
  t.ok(va.ok && vb.ok, 'both verdicts are clean');
  t.ok(
    bundleA.checkpoints.some((note) => note.includes(`— liaison/${b.nodeId} `)),
    "a's bundle carries b's cosignature lines",
  );
  const clean = crossCheck(bundleA, bundleB, { now });
  t.same(errors(clean.findings), [], 'the two bundles cross-check clean');

  // Delete b's copy of the second message directly in the database, behind the node's back.
  await b.stop();
  const db = new Database(join(b.dataDir, DATABASE_FILE));
  const victim = (await a.api('GET', `/v1/messages/${sent[1]!}/meta`)).body;
  t.equal(victim.messageId, sent[1]);
  const removed = db
    .prepare("DELETE FROM messages WHERE direction = 'in' AND sender = ? AND message_id = ?")
    .run(a.nodeId, Buffer.from(messageIdFromText(sent[1]!))).changes;
  db.close();
  t.equal(removed, 1, 'the inbox row is gone');
  await b.start();
  await c.waitFor(() => a.linkUp(b), 'link back up');

  const tamperedB = await exportOf(b);
  const own = verifyBundle(tamperedB, { now: Date.now() });
  t.ok(
    own.findings.some((f) => f.code === 'inbox-row-missing'),
    "b's own bundle shows a logged reception without its inbox row",
  );
  const report = crossCheck(bundleA, tamperedB, { now: Date.now() });
  const missing = report.findings.filter((f) => f.code === 'sent-but-not-received');
  t.equal(missing.length, 1, 'exactly one message is reported');
  t.equal(missing[0]?.evidence.messageId, sent[1], 'the deleted one');
  t.equal(missing[0]?.evidence.reason, 'deleted-from-inbox', 'with the reason');
  t.ok(missing[0]?.evidence.receipt !== undefined, "with b's signed receipt as evidence");
});

t.test('an audit entry deleted behind a node is caught by its peer', async (t) => {
  const c = await Cluster.create(t, 2, FAST);
  const [a, b] = [c.node(0), c.node(1)];
  await c.pair(a, b);
  await c.waitFor(() => a.linkUp(b), 'link up');
  const first = [await a.send([b], 'before 1'), await a.send([b], 'before 2')];
  await delivered(c, a, first, b);
  // Witnessing protects what a peer has seen: wait until b holds a checkpoint of a's whole log
  // as it is now (the entry deleted below, index 3, is well inside it). The timer would get there
  // too, but only once the log holds more than witnessing records.
  const forced = await a.api('POST', '/v1/audit/checkpoints');
  t.equal(forced.status, 200, 'a signs a checkpoint on demand and sends it to b');
  const sizeNow = forced.body.size as number;
  const heldSize = async (): Promise<number> =>
    ((await b.api('GET', '/v1/audit/witnessed')).body.witnessed as { size: number }[])[0]?.size ??
    0;
  await c.waitFor(async () => (await heldSize()) >= sizeNow, "b holds a's log up to now");
  const heldBefore = await heldSize();

  await a.stop();
  const db = new Database(join(a.dataDir, DATABASE_FILE));
  db.transaction(() => {
    db.prepare('DELETE FROM audit_log WHERE idx = 3').run();
    db.prepare('UPDATE audit_log SET idx = idx + 1000000000 WHERE idx > 3').run();
    db.prepare('UPDATE audit_log SET idx = idx - 1000000001 WHERE idx > 1000000000').run();
    db.prepare('DELETE FROM audit_tree').run();
    buildAuditTree(db);
  })();
  db.close();
  await a.start();
  t.comment(JSON.stringify(a.logs.filter((l) => (l.level as number) >= 40)));
  t.ok(
    a.logged('audit log does not match its last signed checkpoint').length > 0,
    'the node itself says its log no longer matches its checkpoint',
  );
  await c.waitFor(() => a.linkUp(b), 'link back up');
  // New entries make a new checkpoint, which a must prove consistent with what b holds.
  const after = await a.send([b], 'after');
  await delivered(c, a, [after], b);
  await c.waitFor(
    async () => ((await b.api('GET', '/v1/audit/evidence')).body.evidence as unknown[]).length > 0,
    'evidence at b',
  );
  const evidence = (await b.api('GET', '/v1/audit/evidence')).body.evidence as {
    peer: string;
    finding: string;
    heldNote: string;
    presentedNote: string;
  }[];
  t.equal(evidence[0]!.peer, a.nodeId, 'about a');
  t.ok(['inconsistent', 'rollback', 'fork'].includes(evidence[0]!.finding), 'as a contradiction');
  t.ok(
    Number(evidence[0]!.heldNote.split('\n')[1]) >= heldBefore,
    'the checkpoint b held is part of the evidence',
  );
  const entries = (await b.api('GET', '/v1/audit/entries?from=0&limit=1000')).body.entries as {
    kind: string;
  }[];
  t.ok(
    entries.some((e) => e.kind === 'equivocation-detected'),
    "b's own log records the detection",
  );
  t.notOk(await cosignedBy(a, b), "b does not cosign a's rewritten log");
  const bundleB = await exportOf(b);
  const vb = verifyBundle(bundleB, { now: Date.now() });
  t.ok(
    vb.findings.some((f) => f.code === 'peer-equivocation'),
    "b's bundle carries the evidence, and the verifier confirms it",
  );
});
