/**
 * Crash safety (npm run test:faults): while 2,000 messages flow from one node to another, kill -9
 * the sender (in one run) or the receiver (in another) at random moments and restart it. After
 * the dust settles every message the API accepted is in the recipient's inbox exactly once, in
 * sequence order, and every sender status is `delivered`. Repeated over several seeds; the seed
 * is printed with every failure, and LIAISON_FAULT_SEEDS=1,2,3 reruns chosen ones.
 */
import t from 'tap';
import type { Test } from 'tap';
import { Cluster } from '../harness/cluster.ts';
import type { TestNode } from '../harness/cluster.ts';

const MESSAGES = Number(process.env.LIAISON_FAULT_MESSAGES ?? 2000);
const SEEDS = (process.env.LIAISON_FAULT_SEEDS ?? '11,23,37')
  .split(',')
  .map((s) => Number(s.trim()));
const CONCURRENCY = 8;

/** mulberry32: a small seeded PRNG, so a failing run can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

async function run(t: Test, seed: number, victim: 'sender' | 'receiver'): Promise<void> {
  const random = prng(seed);
  const c = await Cluster.create(t, 2);
  const [a, b] = [c.node(0), c.node(1)];
  await c.pair(a, b);
  await c.waitFor(() => a.linkUp(b), 'link up');
  await a.officerToken();
  const accepted: string[] = [];
  let attempts = 0;
  let nextKill = 100 + Math.floor(random() * 400);
  let kills = 0;
  const target: TestNode = victim === 'sender' ? a : b;

  while (accepted.length < MESSAGES) {
    // A burst of concurrent sends, then maybe a crash in the middle of the next burst.
    const burst = Array.from({ length: CONCURRENCY }, () => {
      attempts += 1;
      return a.send([b], `crash-${seed}-${attempts}`).then(
        (id) => accepted.push(id),
        () => undefined, // the sender died under us: the API never answered, so no promise was made
      );
    });
    if (accepted.length >= nextKill) {
      nextKill = accepted.length + 150 + Math.floor(random() * 450);
      kills += 1;
      await new Promise((r) => setTimeout(r, Math.floor(random() * 20)));
      await target.kill();
      await Promise.all(burst);
      await target.start();
    } else {
      await Promise.all(burst);
    }
  }
  t.comment(`seed ${seed}: ${kills} kill -9 of the ${victim}, ${attempts} send attempts`);

  // Everything the API accepted must be delivered exactly once.
  await c.waitFor(
    async () => {
      const r = await a.api('GET', '/v1/outbox?limit=1');
      if (r.status !== 200) return false;
      const inbox = await b.inbox();
      return inbox.length >= accepted.length;
    },
    `seed ${seed}: ${accepted.length} in the inbox`,
    120_000,
  );
  const inbox = await b.inbox();
  const ids = inbox.map((m) => String(m.messageId));
  const unique = new Set(ids);
  t.equal(unique.size, ids.length, `seed ${seed}: no message twice in the inbox`);
  const missing = accepted.filter((id) => !unique.has(id));
  t.same(missing, [], `seed ${seed}: every accepted message arrived`);
  const sequences = inbox.map((m) => Number(m.sequence));
  t.ok(
    sequences.every((s, i) => i === 0 || s > sequences[i - 1]!),
    `seed ${seed}: inbox in sequence order`,
  );
  // Messages the sender stored but never confirmed (killed between commit and answer) may have
  // arrived too: they must be ones the sender has, and also be delivered once.
  const outbox = new Set<string>();
  for (let before: unknown = null; ;) {
    const r = await a.api(
      'GET',
      `/v1/outbox?limit=500${before === null ? '' : `&before=${String(before)}`}`,
    );
    for (const m of r.body.messages as { messageId: string }[]) outbox.add(m.messageId);
    before = r.body.next;
    if (before === null) break;
  }
  t.ok(
    ids.every((id) => outbox.has(id)),
    `seed ${seed}: nothing in the inbox that the sender did not send`,
  );
  await c.waitFor(
    async () => {
      for (let i = 0; i < accepted.length; i += 50) {
        const batch = await Promise.all(accepted.slice(i, i + 50).map((id) => a.statuses(id)));
        if (!batch.every((s) => s[b.nodeId] === 'delivered')) return false;
      }
      return true;
    },
    `seed ${seed}: every sender status delivered`,
    120_000,
  );
  t.pass(`seed ${seed}: every sender status is delivered`);
}

for (const seed of SEEDS) {
  for (const victim of ['sender', 'receiver'] as const) {
    t.test(`kill -9 the ${victim}, seed ${seed}`, async (t) => {
      try {
        await run(t, seed, victim);
      } catch (err) {
        t.fail(`seed ${seed} (${victim}): ${(err as Error).message}`);
      }
    });
  }
}
