/**
 * Delivery between real node processes on loopback: both directions, receipts, statuses moving
 * queued → sent → delivered → acknowledged, three recipients with independent statuses, and a
 * receiver that is down while 500 messages queue up (all arrive, in order, exactly once).
 */
import t from 'tap';
import { Cluster } from '../harness/cluster.ts';
import type { TestNode } from '../harness/cluster.ts';

async function allDelivered(c: Cluster, from: TestNode, ids: readonly string[], to: TestNode) {
  await c.waitFor(
    async () => {
      for (const id of ids) if ((await from.statuses(id))[to.nodeId] !== 'delivered') return false;
      return true;
    },
    `${ids.length} delivered to ${to.name}`,
    60_000,
  );
}

t.test('two nodes: both ways, receipts, statuses, content, acknowledgement', async (t) => {
  const c = await Cluster.create(t, 2);
  const [a, b] = [c.node(0), c.node(1)];
  await c.pair(a, b);
  await c.waitFor(() => a.linkUp(b), 'link up');
  const m1 = await a.send([b], 'preservation request');
  const m2 = await b.send([a], 'answer', { priority: 'urgent' });
  await allDelivered(c, a, [m1], b);
  await allDelivered(c, b, [m2], a);

  const inB = await b.inbox();
  t.equal(inB.length, 1);
  t.equal(inB[0]!.messageId, m1);
  t.equal(inB[0]!.sender, a.nodeId);
  t.equal(inB[0]!.sequence, 1);
  const officer = await b.officerToken();
  const shown = await b.api('GET', `/v1/messages/${m1}`, undefined, officer);
  t.equal(shown.status, 200);
  t.equal((shown.body.content as { subject: string }).subject, 'preservation request');
  t.equal(shown.body.readBy, 'duty-officer');

  const status = await a.api('GET', `/v1/messages/${m1}/status`);
  const r = (status.body.recipients as Record<string, unknown>[])[0]!;
  t.equal(r.status, 'delivered');
  t.type(r.remoteLogIndex, 'number', 'the receipt names the recipient log index');
  t.equal(r.remoteLogIndex, inB[0]!.logIndex);

  const ack = await b.api('POST', `/v1/messages/${m1}/ack`, undefined, officer);
  t.equal(ack.status, 200);
  await c.waitFor(async () => (await a.statuses(m1))[b.nodeId] === 'acknowledged', 'acknowledged');
  const again = await b.api('POST', `/v1/messages/${m1}/ack`, undefined, officer);
  t.equal(again.status, 409, 'acknowledging twice is refused');
});

t.test('three recipients, independent statuses', async (t) => {
  const c = await Cluster.create(t, 4);
  const [s, r1, r2, r3] = [c.node(0), c.node(1), c.node(2), c.node(3)];
  for (const r of [r1, r2, r3]) await c.pair(s, r);
  await c.waitFor(
    async () => (await s.peers()).filter((p) => p.link === 'up').length === 3,
    'links',
  );
  await r3.stop();
  const id = await s.send([r1, r2, r3], 'JIT update');
  await allDelivered(c, s, [id], r1);
  await allDelivered(c, s, [id], r2);
  const st = await s.statuses(id);
  t.not(st[r3.nodeId], 'delivered', 'the stopped recipient is not delivered');
  await r3.start();
  await allDelivered(c, s, [id], r3);
  for (const r of [r1, r2, r3]) {
    const inbox = await r.inbox();
    t.equal(inbox.length, 1, `${r.name} has it once`);
    t.equal(inbox[0]!.messageId, id);
  }
});

t.test('receiver down: 500 queued messages arrive in order, exactly once', async (t) => {
  const c = await Cluster.create(t, 2);
  const [a, b] = [c.node(0), c.node(1)];
  await c.pair(a, b);
  await c.waitFor(() => a.linkUp(b), 'link up');
  await b.stop();
  const ids: string[] = [];
  for (let i = 0; i < 500; i++) ids.push(await a.send([b], `m${i}`));
  await b.start();
  await allDelivered(c, a, [ids.at(-1)!], b);
  await c.waitFor(async () => (await b.inbox()).length >= 500, 'inbox', 60_000);
  const inbox = await b.inbox();
  t.equal(inbox.length, 500, 'exactly 500');
  t.same(
    inbox.map((m) => m.messageId),
    ids,
    'in order',
  );
  t.same(
    inbox.map((m) => m.sequence),
    ids.map((_, i) => i + 1),
    'sequences 1..500 without gaps',
  );
  const statuses = await Promise.all(ids.map((id) => a.statuses(id)));
  t.ok(
    statuses.every((s) => s[b.nodeId] === 'delivered'),
    'every status delivered',
  );
});

t.test(
  'receiver down: an expiring message expires, the next one arrives after a gap',
  async (t) => {
    const c = await Cluster.create(t, 2);
    const [a, b] = [c.node(0), c.node(1)];
    await c.pair(a, b);
    await c.waitFor(() => a.linkUp(b), 'link up');
    await b.stop();
    // Sweeps with nothing to expire first: the outbox scan waits for the earliest expiry.
    await new Promise((r) => setTimeout(r, 1500));
    const late = await a.send([b], 'too late', { ttlSeconds: 1 });
    const kept = await a.send([b], 'in time');
    await c.waitFor(
      async () => (await a.statuses(late))[b.nodeId] === 'expired',
      'expired',
      10_000,
    );
    t.equal((await a.statuses(kept))[b.nodeId], 'queued', 'the other one waits');
    await b.start();
    await allDelivered(c, a, [kept], b);
    const inbox = await b.inbox();
    t.same(
      inbox.map((m) => [m.messageId, m.sequence, m.gap]),
      [[kept, 2, { from: 1, to: 1 }]],
      'only the one in time, with the gap where the expired one was',
    );
    t.equal((await a.statuses(late))[b.nodeId], 'expired', 'and the expired one stays so');
  },
);

t.test('a node with an event-stream follower attached still stops', async (t) => {
  const c = await Cluster.create(t, 1);
  const a = c.node(0);
  const res = await fetch(`http://127.0.0.1:${a.apiPort}/v1/events?after=0`, {
    headers: { authorization: `Bearer ${a.token}` },
  });
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  const reader = res.body!.getReader();
  const first = new TextDecoder().decode((await reader.read()).value);
  t.match(first, /liaison event stream/);
  await a.stop();
  t.equal(a.proc, null, 'stopped (SIGTERM) with the stream open');
  const rest = await reader.read().catch(() => ({ done: true }));
  t.ok(rest.done, 'the stream was closed by the node');
});
