/**
 * The multi-node test harness: real node processes (the built `dist/cli/main.js start`) on
 * 127.0.0.1 with ephemeral ports and temporary data directories. Every process is killed and every
 * directory removed when the test ends, whatever happened. Used by every multi-node test.
 *
 *   const c = await Cluster.create(t, 3);       // three initialised, running nodes
 *   await c.pair(c.nodes[0], c.nodes[1]);        // through an invitation, via the API
 *   await c.waitFor(() => c.nodes[0].linkUp(c.nodes[1]));
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { systemClock } from '../../node/clock.ts';
import { initNode, readApiToken } from '../../node/node.ts';

const CLI = new URL('../../dist/cli/main.js', import.meta.url).pathname;
export const TEST_PASSPHRASE = 'test passphrase for liaison harness';

/** The part of a tap Test the harness needs. */
export interface HarnessTest {
  teardown(fn: () => unknown): void;
  comment(...args: unknown[]): void;
}

export interface NodeOptions {
  /** Extra environment for `start`, e.g. LIAISON_HANDSHAKE_TIMEOUT_MS. */
  readonly env?: Record<string, string>;
}

export class TestNode {
  proc: ChildProcess | null = null;
  nodeId = '';
  peerPort = 0;
  apiPort = 0;
  readonly logs: Record<string, unknown>[] = [];
  /** Standard error of the process, and the reason if it exited on its own. */
  stderr = '';
  crash: string | null = null;
  #token = '';

  constructor(
    readonly name: string,
    readonly dataDir: string,
    private readonly options: NodeOptions,
  ) {}

  get token(): string {
    return this.#token;
  }

  /** Starts the process and resolves once it logged `ready` (with its bound ports). */
  async start(): Promise<void> {
    if (!existsSync(CLI)) throw new Error(`${CLI} missing: run npm run build (npm test does)`);
    this.#token = readApiToken(this.dataDir);
    // LIAISON_PROFILE_DIR=D writes a V8 CPU profile per node process into D (for benchmarks).
    const profile = process.env.LIAISON_PROFILE_DIR;
    const proc = spawn(
      process.execPath,
      [
        ...(profile === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profile]),
        CLI,
        'start',
        '--data-dir',
        this.dataDir,
        '--peer-host',
        '127.0.0.1',
        '--peer-port',
        '0',
        '--api-port',
        '0',
        '--log-level',
        'info',
      ],
      {
        env: { ...process.env, LIAISON_PASSPHRASE: TEST_PASSPHRASE, ...this.options.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    this.proc = proc;
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      this.stderr += d.toString();
    });
    proc.once('exit', (code, signal) => {
      // An exit nobody asked for is a crash: keep the evidence for the test report.
      if (this.proc === proc) this.crash = `exited with ${code ?? signal}: ${stderr.slice(-3000)}`;
    });
    const lines = createInterface({ input: proc.stdout! });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.name} did not start in 20 s: ${stderr}`)),
        20_000,
      );
      const early = (code: number | null) => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited with ${code} before ready: ${stderr}`));
      };
      proc.once('exit', early);
      lines.on('line', (line) => {
        let entry: Record<string, unknown>;
        try {
          entry = JSON.parse(line) as Record<string, unknown>;
        } catch {
          return;
        }
        this.logs.push(entry);
        if (entry.event === 'ready') {
          this.nodeId = entry.nodeId as string;
          this.peerPort = entry.peerPort as number;
          this.apiPort = entry.apiPort as number;
          clearTimeout(timer);
          proc.removeListener('exit', early);
          resolve();
        }
      });
    });
  }

  /** Stops gracefully (SIGTERM) and waits for the exit. */
  async stop(): Promise<void> {
    await this.#signal('SIGTERM');
  }

  /** Crashes it (SIGKILL). */
  async kill(): Promise<void> {
    await this.#signal('SIGKILL');
  }

  async #signal(signal: NodeJS.Signals): Promise<void> {
    const proc = this.proc;
    if (proc === null || proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill(signal);
    });
    this.proc = null;
  }

  /** Calls the node's API; resolves with status and JSON body. */
  async api(
    method: string,
    path: string,
    body?: unknown,
    token: string | null = this.#token,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`http://127.0.0.1:${this.apiPort}${path}`, {
      method,
      headers: {
        ...(token === null ? {} : { authorization: `Bearer ${token}` }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined
        ? {}
        : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    return {
      status: res.status,
      body: (await res.json().catch(() => ({}))) as Record<string, unknown>,
    };
  }

  #officer: string | null = null;

  /** A token of user 'duty-officer' (role officer), created on first use. */
  async officerToken(): Promise<string> {
    if (this.#officer !== null) return this.#officer;
    const u = await this.api('POST', '/v1/users', { name: 'duty-officer', role: 'officer' });
    if (u.status !== 200 && u.status !== 409) throw new Error(`user: ${JSON.stringify(u.body)}`);
    const tok = await this.api('POST', '/v1/users/duty-officer/tokens', { label: 'harness' });
    if (tok.status !== 200) throw new Error(`token: ${JSON.stringify(tok.body)}`);
    this.#officer = String(tok.body.token);
    return this.#officer;
  }

  /** Sends a message as the officer; resolves with the message ID. */
  async send(
    to: readonly TestNode[],
    subject: string,
    extra: Record<string, unknown> = {},
  ): Promise<string> {
    const r = await this.api(
      'POST',
      '/v1/messages',
      {
        to: to.map((n) => ({ nodeId: n.nodeId, mailbox: '24-7' })),
        subject,
        body: `body of ${subject}`,
        ...extra,
      },
      await this.officerToken(),
    );
    if (r.status !== 200) throw new Error(`send: ${r.status} ${JSON.stringify(r.body)}`);
    return String(r.body.messageId);
  }

  /** Per-recipient statuses of a sent message, by recipient node ID. */
  async statuses(messageId: string): Promise<Record<string, string>> {
    const r = await this.api('GET', `/v1/messages/${messageId}/status`);
    if (r.status !== 200) throw new Error(`status: ${r.status} ${JSON.stringify(r.body)}`);
    const out: Record<string, string> = {};
    for (const x of r.body.recipients as { nodeId: string; status: string }[])
      out[x.nodeId] = x.status;
    return out;
  }

  /** Every inbox entry (metadata), oldest first, following pages. */
  async inbox(query = ''): Promise<Record<string, unknown>[]> {
    const all: Record<string, unknown>[] = [];
    let before: unknown = null;
    for (;;) {
      const q = [query, 'limit=500', before === null ? '' : `before=${String(before)}`]
        .filter((x) => x !== '')
        .join('&');
      const r = await this.api('GET', `/v1/inbox?${q}`);
      if (r.status !== 200) throw new Error(`inbox: ${r.status} ${JSON.stringify(r.body)}`);
      all.push(...(r.body.messages as Record<string, unknown>[]));
      before = r.body.next;
      if (before === null) return all.reverse();
    }
  }

  async peers(): Promise<
    { nodeId: string; status: string; link: string; address: string | null }[]
  > {
    return (await this.api('GET', '/v1/peers')).body.peers as {
      nodeId: string;
      status: string;
      link: string;
      address: string | null;
    }[];
  }

  async linkUp(other: TestNode): Promise<boolean> {
    return (await this.peers()).some((p) => p.nodeId === other.nodeId && p.link === 'up');
  }

  /** Log entries with this message (e.g. 'inbound handshake refused'). */
  logged(msg: string): Record<string, unknown>[] {
    return this.logs.filter((l) => l.msg === msg);
  }
}

export class Cluster {
  readonly nodes: TestNode[] = [];

  private constructor(readonly root: string) {}

  /** The i-th node (throws if there is none, so tests need no non-null assertions). */
  node(i: number): TestNode {
    const n = this.nodes[i];
    if (n === undefined) throw new Error(`no node ${i}`);
    return n;
  }

  /** Creates and starts `n` nodes; everything is torn down with the test. */
  static async create(t: HarnessTest, n: number, options: NodeOptions = {}): Promise<Cluster> {
    const c = new Cluster(mkdtempSync(join(tmpdir(), 'liaison-cluster-')));
    t.teardown(() => c.destroy());
    for (let i = 0; i < n; i++) await c.add(`node-${i}`, options);
    return c;
  }

  async add(name: string, options: NodeOptions = {}): Promise<TestNode> {
    const dataDir = join(this.root, name);
    await initNode({
      dataDir,
      passphrase: TEST_PASSPHRASE,
      name,
      publicAddress: null,
      peerPort: 0,
      apiPort: 0,
      kdf: 'test',
      clock: systemClock,
    });
    const node = new TestNode(name, dataDir, options);
    this.nodes.push(node);
    await node.start();
    return node;
  }

  /** Pairs b with a through an invitation issued by a. */
  async pair(a: TestNode, b: TestNode): Promise<void> {
    const inv = await a.api('POST', '/v1/invitations', { label: `for ${b.name}` });
    if (inv.status !== 200) throw new Error(`invitation: ${JSON.stringify(inv.body)}`);
    const acc = await b.api('POST', '/v1/invitations/accept', { invitation: inv.body.invitation });
    if (acc.status !== 200) throw new Error(`accept: ${JSON.stringify(acc.body)}`);
  }

  /** Polls `predicate` every 50 ms until true or `timeoutMs` (then throws with `what`). */
  async waitFor(
    predicate: () => Promise<boolean> | boolean,
    what = 'condition',
    timeoutMs = 15_000,
  ): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if (await predicate()) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  async destroy(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill()));
    rmSync(this.root, { recursive: true, force: true });
  }
}
