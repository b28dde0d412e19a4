/**
 * Group commit against a real SQLite file: jobs of one turn share a transaction, a failing job
 * rolls back alone, and urgent jobs commit first, in a transaction of their own.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { ManualClock } from '../../node/clock.ts';
import { GroupCommit } from '../../node/group-commit.ts';
import { Store } from '../../node/store.ts';

const dir = mkdtempSync(join(tmpdir(), 'liaison-group-commit-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function setup(t: Test, name: string) {
  const store = Store.open(join(dir, `${name}.sqlite`), new ManualClock(1_767_225_600_000));
  t.teardown(() => store.close());
  store.database.exec('CREATE TABLE jobs (name TEXT NOT NULL)');
  const insert = store.database.prepare('INSERT INTO jobs (name) VALUES (?)');
  /** Jobs by the commit they ran in (0 for the first). */
  const ranIn = new Map<string, number>();
  let commits = 0;
  const gc = new GroupCommit(store, () => (commits += 1));
  const job =
    (name: string, fail = false) =>
    () => {
      ranIn.set(name, commits);
      insert.run(name);
      if (fail) throw new Error(`${name} fails`);
      return name;
    };
  const stored = () =>
    (
      store.database.prepare('SELECT name FROM jobs ORDER BY rowid').pluck().all() as string[]
    ).sort();
  return { gc, job, ranIn, stored, commits: () => commits };
}

t.test('jobs of one turn share one commit; a failing job rolls back alone', async (t) => {
  const { gc, job, ranIn, stored, commits } = setup(t, 'shared');
  const results = await Promise.allSettled([
    gc.run(job('a')),
    gc.run(job('b', true)),
    gc.run(job('c')),
  ]);
  t.same(
    results.map((r) => r.status),
    ['fulfilled', 'rejected', 'fulfilled'],
  );
  t.equal(commits(), 1, 'one commit');
  t.same([...ranIn.values()], [0, 0, 0]);
  t.same(stored(), ['a', 'c'], 'the failed job left nothing');
});

t.test('urgent jobs commit first, in a transaction of their own', async (t) => {
  const { gc, job, ranIn, stored, commits } = setup(t, 'urgent');
  const order: string[] = [];
  const track = (p: Promise<string>) => p.then((name) => order.push(name));
  await Promise.all([
    track(gc.run(job('routine-1'))),
    track(gc.run(job('routine-2'))),
    track(gc.run(job('urgent-1'), true)),
    track(gc.run(job('urgent-2'), true)),
  ]);
  t.equal(commits(), 2);
  t.equal(ranIn.get('urgent-1'), 0, 'urgent jobs run in the first commit');
  t.equal(ranIn.get('urgent-2'), 0);
  t.equal(ranIn.get('routine-1'), 1, 'routine jobs of the same turn in the next one');
  t.equal(ranIn.get('routine-2'), 1);
  t.same(order, ['urgent-1', 'urgent-2', 'routine-1', 'routine-2'], 'answered in that order');
  t.same(stored(), ['routine-1', 'routine-2', 'urgent-1', 'urgent-2']);
});
