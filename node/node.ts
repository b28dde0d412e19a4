/**
 * The composition root: the one place where the node's services are created and wired together
 * (keystore, store, pairing, links, API). Everything else receives its dependencies.
 */
import { chmod, mkdir, open, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import {
  ARGON2ID_MODERATE,
  ARGON2ID_TEST,
  fingerprint,
  initCrypto,
  isLiaisonError,
  isWitnessMessage,
  LiaisonError,
  nodeIdFromText,
  nodeIdToText,
  randomBytes,
  sha256,
  toBase32,
  toHex,
  utf8,
} from '../protocol/index.ts';
import type { LocalIdentity } from '../protocol/index.ts';
import { buildApi } from './api/build.ts';
import { AuditLog } from './audit-log.ts';
import { createAuditSubsystem } from './audit.ts';
import type { AuditSubsystem } from './audit.ts';
import { Delivery } from './delivery.ts';
import { EventLog } from './events.ts';
import { API_TOKEN_PREFIX, hashToken, Users } from './users.ts';
import type { Clock } from './clock.ts';
import { CONFIG_FILE } from './config.ts';
import type { NodeConfig } from './config.ts';
import { createKeystore, openKeystore, rotateStaticKey } from './keystore.ts';
import { LinkManager } from './link/link-manager.ts';
import { DEFAULT_LINK_LIMITS } from './link/peer-link.ts';
import { RECONNECT_BASE_MS, RECONNECT_RESET_AFTER_MS } from './constants.ts';
import type { LinkSelf } from './link/handshake.ts';
import type { Logger } from './log.ts';
import { Pairing } from './pairing.ts';
import { Store } from './store.ts';

export const DATABASE_FILE = 'liaison.db';
export const API_TOKEN_FILE = 'api-token';
/** Written while the node runs: pid and bound ports, so local tools find an ephemeral API port. */
export const RUNTIME_FILE = 'node.json';

export interface InitOptions {
  readonly dataDir: string;
  readonly passphrase: string;
  readonly name: string;
  readonly publicAddress: string | null;
  readonly peerPort: number | null;
  readonly apiPort: number | null;
  /** 'test' uses the cheapest Argon2id parameters: for test suites and demos only. */
  readonly kdf: 'moderate' | 'test';
  readonly clock: Clock;
}

export interface InitResult {
  readonly nodeId: string;
  readonly fingerprint: string;
  readonly tokenFile: string;
}

/**
 * Creates a node: keystore (refuses to overwrite one), config.json, database, and an admin API
 * token written to `api-token` (mode 0600) and stored hashed.
 */
export async function initNode(o: InitOptions): Promise<InitResult> {
  await initCrypto();
  await mkdir(o.dataDir, { recursive: true, mode: 0o700 });
  // Refuse before creating anything, so a failed init never leaves a half-made node behind.
  for (const file of ['keystore.json', CONFIG_FILE, API_TOKEN_FILE, DATABASE_FILE]) {
    if (
      await stat(join(o.dataDir, file)).then(
        () => true,
        () => false,
      )
    ) {
      throw new LiaisonError(
        file === 'keystore.json' ? 'LIAISON_ERR_KEYSTORE_EXISTS' : 'LIAISON_ERR_CONFLICT',
        `${join(o.dataDir, file)} already exists`,
      );
    }
  }
  const identity = await createKeystore(o.dataDir, o.passphrase, o.clock.now(), {
    params: o.kdf === 'test' ? ARGON2ID_TEST : ARGON2ID_MODERATE,
  });
  const config: Record<string, unknown> = { name: o.name };
  if (o.publicAddress !== null) config.publicAddress = o.publicAddress;
  if (o.peerPort !== null) config.peerPort = o.peerPort;
  if (o.apiPort !== null) config.apiPort = o.apiPort;
  await writeFile(join(o.dataDir, CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`, {
    mode: 0o600,
    flag: 'wx',
  });
  const token = API_TOKEN_PREFIX + toBase32(randomBytes(32));
  const store = Store.open(join(o.dataDir, DATABASE_FILE), o.clock);
  try {
    // The schema migration created the 'admin' user; this is its first token.
    new Users(store, new AuditLog(store.database), o.clock).addTokenHash(
      'admin',
      hashToken(token),
      'initial admin token',
    );
  } finally {
    store.close();
  }
  const tokenFile = join(o.dataDir, API_TOKEN_FILE);
  const fh = await open(tokenFile, 'wx', 0o600);
  try {
    await fh.writeFile(`${token}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return {
    nodeId: nodeIdToText(identity.nodeId),
    fingerprint: fingerprint(identity.signingKey.publicKey),
    tokenFile,
  };
}

function readRuntimePid(dataDir: string): number | null {
  try {
    const pid = (JSON.parse(readFileSync(join(dataDir, RUNTIME_FILE), 'utf8')) as { pid?: unknown })
      .pid;
    return typeof pid === 'number' && Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: alive but someone else's; ESRCH: gone (a stale file from a crash).
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The running node's bound API address, if it is running and wrote one. */
export function readRuntime(dataDir: string): { apiHost: string; apiPort: number } | null {
  try {
    const j = JSON.parse(readFileSync(join(dataDir, RUNTIME_FILE), 'utf8')) as {
      apiHost?: unknown;
      apiPort?: unknown;
    };
    return typeof j.apiHost === 'string' && typeof j.apiPort === 'number'
      ? { apiHost: j.apiHost, apiPort: j.apiPort }
      : null;
  } catch {
    return null;
  }
}

/** Reads the admin token a local CLI uses. */
export function readApiToken(dataDir: string): string {
  try {
    return readFileSync(join(dataDir, API_TOKEN_FILE), 'utf8').trim();
  } catch {
    throw new LiaisonError('LIAISON_ERR_UNAUTHORIZED', `no ${API_TOKEN_FILE} in ${dataDir}`);
  }
}

export interface RunningNode {
  readonly nodeId: string;
  readonly peerPort: number;
  readonly apiPort: number;
  readonly links: LinkManager;
  readonly pairing: Pairing;
  stop(): Promise<void>;
}

export interface StartDeps {
  readonly config: NodeConfig;
  readonly passphrase: string;
  readonly clock: Clock;
  readonly log: Logger;
}

export async function startNode(d: StartDeps): Promise<RunningNode> {
  await initCrypto();
  const { config, clock, log } = d;
  const keystoreMode = (await stat(join(config.dataDir, 'keystore.json')).catch(() => null))?.mode;
  if (keystoreMode === undefined)
    throw new LiaisonError('LIAISON_ERR_KEYSTORE_MISSING', config.dataDir);
  // One process per data directory: two would be the same identity twice.
  const running = readRuntimePid(config.dataDir);
  if (running !== null && running !== process.pid && isAlive(running)) {
    throw new LiaisonError(
      'LIAISON_ERR_CONFLICT',
      `a node is already running on ${config.dataDir} (pid ${running})`,
    );
  }
  let identity: LocalIdentity = await openKeystore(config.dataDir, d.passphrase);
  const store = Store.open(join(config.dataDir, DATABASE_FILE), clock);
  // The database holds pinned keys and invitation secrets: owner-only, whatever the umask was.
  for (const f of [DATABASE_FILE, `${DATABASE_FILE}-wal`, `${DATABASE_FILE}-shm`])
    await chmod(join(config.dataDir, f), 0o600).catch(() => undefined);
  let address = config.peer.publicAddress;
  const self = (): LinkSelf => ({ identity, rotations: [], name: config.name, address });
  const audit = new AuditLog(store.database);
  const events = new EventLog(store.database, clock);
  const users = new Users(store, audit, clock);
  let auditing: AuditSubsystem | null = null;
  const pairing = new Pairing(store, clock, self, (nodeId, change, by, now) => {
    audit.append('peer-changed', now, { peer: nodeIdFromText(nodeId), change, user: by });
    if (change === 'unpaired') auditing?.witnessing.forget(nodeId);
  });
  // Links and delivery need each other: links hand delivery what arrives, delivery sends on links.
  let delivery: Delivery | null = null;
  const tls =
    config.peer.tlsCert === null || config.peer.tlsKey === null
      ? undefined
      : { cert: readFileSync(config.peer.tlsCert), key: readFileSync(config.peer.tlsKey) };
  const links = new LinkManager({
    self,
    directory: pairing,
    clock,
    log: { info: (o, m) => log.info(o, m), warn: (o, m) => log.warn(o, m) },
    onData: (peerId, body) => {
      try {
        if (isWitnessMessage(body)) auditing?.witnessing.onMessage(peerId, body);
        else delivery?.onData(peerId, body);
      } catch (err) {
        // A malformed delivery message, or a batch we could not store: cut the link. The peer
        // resends whatever was not receipted once it reconnects; nothing is lost.
        const code = isLiaisonError(err) ? err.code : 'LIAISON_ERR_INTERNAL';
        log.warn({ peer: peerId, code }, 'delivery message refused; closing link');
        links.link(peerId)?.close(code);
      }
    },
    onPeerUp: (peerId) => {
      events.record('peer.up', { nodeId: peerId });
      delivery?.onPeerUp(peerId);
      auditing?.witnessing.push(peerId, true);
    },
    onPeerDown: (peerId, reason) => {
      events.record('peer.down', { nodeId: peerId, reason });
      delivery?.onPeerDown(peerId);
      auditing?.witnessing.onPeerDown(peerId);
    },
    listen: {
      host: config.peer.host,
      port: config.peer.port,
      ...(tls === undefined ? {} : { tls }),
    },
    handshakeTimeoutMs: config.links.handshakeTimeoutMs,
    maxPendingHandshakes: config.links.maxPendingHandshakes,
    limits: {
      ...DEFAULT_LINK_LIMITS,
      maxFramesPerSecond: config.links.maxFramesPerSecond,
      frameBurst: config.links.maxFramesPerSecond * 2,
      keepaliveIntervalMs: config.links.keepaliveIntervalMs,
      idleTimeoutMs: config.links.idleTimeoutMs,
    },
    reconnect: {
      baseMs: RECONNECT_BASE_MS,
      maxMs: config.links.reconnectMaxMs,
      resetAfterMs: RECONNECT_RESET_AFTER_MS,
    },
    ...(config.peer.tlsCa === null ? {} : { dialTls: { ca: readFileSync(config.peer.tlsCa) } }),
  });
  let peerPort = 0;
  try {
    peerPort = await links.start();
  } catch (err) {
    store.close();
    throw new LiaisonError(
      'LIAISON_ERR_CONFIG_INVALID',
      `cannot listen on the peer port: ${(err as Error).message}`,
      { field: 'peerPort' },
    );
  }
  // Without a configured public address, a node bound to a specific interface can say where it is.
  if (address === null && config.peer.host !== '0.0.0.0' && config.peer.host !== '::') {
    address = `${tls === undefined ? 'ws' : 'wss'}://${config.peer.host.includes(':') ? `[${config.peer.host}]` : config.peer.host}:${peerPort}`;
  }
  // What delivery and witnessing may do with links: send, ask, close.
  const linkPort = {
    send: (peerId: string, body: Uint8Array) => links.send(peerId, body),
    isUp: (peerId: string) => links.link(peerId)?.isOpen === true,
    close: (peerId: string, code: string) => links.link(peerId)?.close(code),
    connectedPeers: () => links.connectedPeers(),
  };
  // What delivery and the audit subsystem share: storage, clock, identity, peers, links, log.
  const core = {
    store,
    audit,
    events,
    clock,
    identity: () => identity,
    peers: pairing,
    links: linkPort,
    log: {
      info: (o: object, m: string) => log.info(o, m),
      warn: (o: object, m: string) => log.warn(o, m),
      error: (o: object, m: string) => log.error(o, m),
    },
  };
  delivery = new Delivery(core);
  delivery.start();
  for (const peerId of links.connectedPeers()) delivery.onPeerUp(peerId);
  const audited = createAuditSubsystem({ ...core, delivery, users });
  auditing = audited;
  recordConfig(store, audit, config, clock);
  const damage = audited.checkpoints.selfCheck();
  if (damage !== null) {
    // The database was changed behind the node's back. It keeps running (its peers hold the
    // evidence and will refuse to cosign), but says so loudly and raises an alert.
    log.error({ problem: damage }, 'audit log does not match its last signed checkpoint');
    store.transaction(() =>
      events.record('audit.alert', { finding: 'local-log-inconsistent', problem: damage }),
    );
  }
  const checkpointTick = (): void => {
    try {
      audited.checkpoints.issue(false);
      audited.witnessing.pushAll(links.connectedPeers());
    } catch (err) {
      log.error(
        {
          code: isLiaisonError(err) ? err.code : 'LIAISON_ERR_INTERNAL',
          err: (err as Error).message,
        },
        'checkpoint failed',
      );
    }
  };
  checkpointTick();
  const checkpointTimer = setInterval(checkpointTick, config.checkpointIntervalMs);
  checkpointTimer.unref();
  let rotation: Promise<void> = Promise.resolve();
  const api = buildApi({
    delivery,
    events,
    log,
    audit: {
      store,
      audit,
      clock,
      identity: () => identity,
      connectedPeers: () => links.connectedPeers(),
      ...audited,
    },
    self,
    pairing,
    links,
    users,
    peerPort: () => peerPort,
    rotateStaticKey: async (by) => {
      // One rotation at a time: two concurrent ones would certify two keys under one serial.
      const run = rotation.then(async () => {
        const next = await rotateStaticKey(config.dataDir, d.passphrase, clock.now());
        store.transaction(() =>
          audit.append('key-rotated', clock.now(), { serial: next.keyRecord.serial, user: by }),
        );
        identity = next;
        links.announceKeyRecord(identity.keyRecord);
        log.info({ serial: identity.keyRecord.serial }, 'static key rotated and announced');
      });
      rotation = run.catch(() => undefined);
      await run;
    },
  });
  try {
    await api.listen({ host: config.api.host, port: config.api.port });
  } catch (err) {
    clearInterval(checkpointTimer);
    delivery.stop();
    await links.stop();
    store.close();
    throw new LiaisonError(
      'LIAISON_ERR_CONFIG_INVALID',
      `cannot listen on the API port: ${(err as Error).message}`,
      { field: 'apiPort' },
    );
  }
  const apiPort = (api.server.address() as AddressInfo).port;
  const nodeId = nodeIdToText(identity.nodeId);
  const runtimeFile = join(config.dataDir, RUNTIME_FILE);
  await writeFile(
    runtimeFile,
    `${JSON.stringify({ pid: process.pid, apiHost: config.api.host, apiPort, peerPort })}\n`,
    { mode: 0o600 },
  );
  log.info(
    {
      event: 'ready',
      nodeId,
      peerPort,
      apiPort,
      publicAddress: address,
      fingerprint: fingerprint(identity.signingKey.publicKey),
    },
    'node ready',
  );
  let stopped = false;
  return {
    nodeId,
    peerPort,
    apiPort,
    links,
    pairing,
    async stop() {
      if (stopped) return;
      stopped = true;
      await api.close();
      clearInterval(checkpointTimer);
      delivery?.stop();
      await links.stop();
      store.close();
      await rm(runtimeFile, { force: true });
      log.info({ event: 'stopped', nodeId }, 'node stopped');
    },
  };
}

/**
 * Records a `config-changed` entry when the node starts with settings other than the last ones
 * recorded (configuration comes from files and the environment, so start-up is when it changes).
 * The hash covers every effective setting; none of them is secret.
 */
function recordConfig(store: Store, audit: AuditLog, config: NodeConfig, clock: Clock): void {
  const hash = sha256(utf8(JSON.stringify(config)));
  const hex = toHex(hash);
  store.transaction(() => {
    const last = store.database
      .prepare("SELECT value FROM meta WHERE key = 'config_hash'")
      .pluck()
      .get();
    if (last === hex) return;
    audit.append('config-changed', clock.now(), { configHash: hash });
    store.database
      .prepare(
        "INSERT INTO meta (key, value) VALUES ('config_hash', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      )
      .run(hex);
  });
}
