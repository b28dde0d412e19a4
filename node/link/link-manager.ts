/**
 * Keeps one authenticated link per paired peer (docs/protocol.md §12.5): accepts links on the
 * peer port, dials peers that have an address, reconnects with exponential backoff and full
 * jitter, collapses simultaneous links to one by a deterministic rule, pairs through invitations,
 * and cuts links at once on unpair or block. A slow or dead peer never blocks the others: every
 * link has its own socket, timers and bounded queue, and nothing here waits on one peer.
 */
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import type WebSocket from 'ws';
import {
  asNodeId,
  closeCodeFor,
  compareBytes,
  decodeInvitation,
  equalBytes,
  isLiaisonError,
  isLinkAddress,
  LiaisonError,
  LINK_PATH,
  LINK_SUBPROTOCOL,
  nodeIdFromText,
  nodeIdToText,
} from '../../protocol/index.ts';
import type {
  Frame,
  Hello,
  Invitation,
  KeyRecord,
  LinkMode,
  NodeId,
  TransportPair,
} from '../../protocol/index.ts';
import type { Clock } from '../clock.ts';
import {
  HANDSHAKE_TIMEOUT_MS,
  MAX_PENDING_HANDSHAKES,
  RECONNECT_BASE_MS,
  RECONNECT_MAX_MS,
  RECONNECT_RESET_AFTER_MS,
} from '../constants.ts';
import { dial, MAX_WS_MESSAGE_BYTES, respond } from './handshake.ts';
import type { LinkSelf } from './handshake.ts';
import { PeerLink } from './peer-link.ts';
import type { LinkLimits } from './peer-link.ts';

/** What the link layer needs to know about peers; the node implements it over its store. */
export interface PeerDirectory {
  get(nodeId: string): KnownPeer | null;
  list(): KnownPeer[];
  /** Secret of a usable invitation; throws LIAISON_ERR_INVITATION_* (or NOT_FOUND as INVALID). */
  invitationSecret(id: Uint8Array): Uint8Array;
  /** Responder side of pairing, after READY: use the invitation, pin the peer (one transaction). */
  pairedByInvitation(invitationId: Uint8Array, hello: Hello, now: number): void;
  /** Initiator side of pairing: pin the inviter from the invitation, with its address. */
  pairedWithInviter(invitation: Invitation, hello: Hello, now: number): void;
  /** A newer key record from a pinned peer (rotation announced in a hello or KEY_RECORD frame). */
  peerKeyRecord(nodeId: string, record: KeyRecord): void;
  /** The dial-back address a pinned peer announced in its authenticated hello. */
  peerAddress(nodeId: string, address: string): void;
  touch(nodeId: string, now: number): void;
}

export interface KnownPeer {
  readonly nodeId: string;
  readonly status: 'paired' | 'blocked';
  readonly identityKey: Uint8Array;
  readonly dhKey: Uint8Array;
  readonly keyRecordSerial: number;
  readonly address: string | null;
}

export interface LinkLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface LinkManagerOptions {
  readonly self: () => LinkSelf;
  readonly directory: PeerDirectory;
  readonly clock: Clock;
  readonly log: LinkLogger;
  readonly listen: {
    readonly host: string;
    readonly port: number;
    readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
  };
  readonly dialTls?: { readonly ca?: string | Buffer };
  readonly limits?: LinkLimits;
  readonly handshakeTimeoutMs?: number;
  readonly maxPendingHandshakes?: number;
  readonly reconnect?: {
    readonly baseMs: number;
    readonly maxMs: number;
    readonly resetAfterMs: number;
  };
  /** Random in [0, 1) for backoff jitter; injectable for tests. */
  readonly random?: () => number;
  readonly onData?: (peerId: string, body: Uint8Array) => void;
  readonly onPeerUp?: (peerId: string) => void;
  readonly onPeerDown?: (peerId: string, reason: string) => void;
}

/**
 * Handshakes in flight from one network address: one source cannot take every slot. Authorities
 * behind one NAT rarely handshake more than a couple at a time.
 */
export const MAX_PENDING_HANDSHAKES_PER_ADDRESS = 8;
/** Connections on the peer port, upgraded or not (file descriptors are finite). */
export const MAX_PEER_PORT_CONNECTIONS = 1024;
/** A peer-port HTTP request (the upgrade) must arrive whole within this. */
export const UPGRADE_REQUEST_TIMEOUT_MS = 5000;

/** Handshake refusals logged individually per second; the rest are counted and summarised. */
export const REFUSAL_LOG_PER_SECOND = 20;

/** A per-second budget of log lines, reporting how many were suppressed in the last window. */
class LogBudget {
  #windowStart = 0;
  #used = 0;
  #suppressed = 0;
  constructor(
    private readonly perSecond: number,
    private readonly onSuppressed: (count: number) => void,
  ) {}
  allow(now: number): boolean {
    if (now - this.#windowStart >= 1000) {
      if (this.#suppressed > 0) this.onSuppressed(this.#suppressed);
      this.#windowStart = now;
      this.#used = 0;
      this.#suppressed = 0;
    }
    if (this.#used < this.perSecond) {
      this.#used += 1;
      return true;
    }
    this.#suppressed += 1;
    return false;
  }
}

/** How often contact with a peer is written to its record ("last seen"). */
export const TOUCH_INTERVAL_MS = 10_000;

interface Dialer {
  attempt: number;
  timer: NodeJS.Timeout | null;
  dialing: boolean;
}

export class LinkManager {
  readonly #o: LinkManagerOptions;
  readonly #links = new Map<string, PeerLink>();
  readonly #dialers = new Map<string, Dialer>();
  #server: HttpServer | null = null;
  #wss: WebSocketServer | null = null;
  #pending = 0;
  #stopping = false;
  readonly #touched = new Map<string, number>();
  readonly #pendingByAddress = new Map<string, number>();
  #overloadRefused = 0;
  #overloadLoggedAt = 0;
  readonly #refusalLog = new LogBudget(REFUSAL_LOG_PER_SECOND, (suppressed) =>
    this.#o.log.warn(
      { code: 'LIAISON_ERR_LINK_OVERLOADED', suppressed },
      'inbound handshake refusals not logged individually',
    ),
  );

  constructor(o: LinkManagerOptions) {
    this.#o = o;
  }

  get #timeoutMs(): number {
    return this.#o.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS;
  }

  /** Starts the peer port and dials every paired peer with an address. Resolves with the bound port. */
  async start(): Promise<number> {
    const { host, port, tls } = this.#o.listen;
    const server =
      tls === undefined ? createHttpServer() : createHttpsServer({ cert: tls.cert, key: tls.key });
    server.maxConnections = MAX_PEER_PORT_CONNECTIONS;
    server.headersTimeout = UPGRADE_REQUEST_TIMEOUT_MS;
    server.requestTimeout = UPGRADE_REQUEST_TIMEOUT_MS;
    server.on('request', (_req, res) => {
      res
        .writeHead(426, { 'content-type': 'text/plain' })
        .end('liaison peer port: WebSocket only\n');
    });
    const wss = new WebSocketServer({
      server,
      path: LINK_PATH,
      maxPayload: MAX_WS_MESSAGE_BYTES,
      perMessageDeflate: false,
      handleProtocols: (protocols) => (protocols.has(LINK_SUBPROTOCOL) ? LINK_SUBPROTOCOL : false),
      verifyClient: (info, done) => {
        // Refuse before the upgrade when too many handshakes are in flight (half-open floods).
        const perAddress = this.#pendingByAddress.get(info.req.socket.remoteAddress ?? '?') ?? 0;
        if (
          this.#pending >= (this.#o.maxPendingHandshakes ?? MAX_PENDING_HANDSHAKES) ||
          perAddress >= MAX_PENDING_HANDSHAKES_PER_ADDRESS
        ) {
          // Logged at most once a second with a count: a flood must not become a log flood.
          this.#overloadRefused += 1;
          const now = this.#o.clock.now();
          if (now - this.#overloadLoggedAt >= 1000) {
            this.#o.log.warn(
              {
                remote: info.req.socket.remoteAddress,
                code: 'LIAISON_ERR_LINK_OVERLOADED',
                refused: this.#overloadRefused,
              },
              'inbound connections refused',
            );
            this.#overloadLoggedAt = now;
            this.#overloadRefused = 0;
          }
          done(false, 503, 'overloaded');
        } else done(true);
      },
    });
    wss.on('connection', (ws, req) => this.#accept(ws, req));
    this.#server = server;
    this.#wss = wss;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    for (const p of this.#o.directory.list())
      if (p.status === 'paired') this.#scheduleDial(p.nodeId, 0);
    return (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    for (const d of this.#dialers.values()) if (d.timer !== null) clearTimeout(d.timer);
    for (const link of [...this.#links.values()]) link.close('SHUTDOWN');
    for (const ws of this.#wss?.clients ?? []) ws.terminate();
    await new Promise<void>((resolve) => this.#wss?.close(() => resolve()) ?? resolve());
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()) ?? resolve());
  }

  /** The link to a peer, if up. */
  link(peerId: string): PeerLink | null {
    const l = this.#links.get(peerId);
    return l !== undefined && l.isOpen ? l : null;
  }

  /** Peers with a link up. */
  connectedPeers(): string[] {
    return [...this.#links.entries()].filter(([, l]) => l.isOpen).map(([id]) => id);
  }

  /**
   * Sends application data to a peer. False when the link is down or its queue is full: the
   * caller keeps the data and retries (on peer up, or later).
   */
  send(peerId: string, body: Uint8Array): boolean {
    const l = this.link(peerId);
    return l !== null && l.send({ type: 'DATA', body });
  }

  /** Unpair or block: closes the link now and stops dialing. */
  disconnect(peerId: string, reason: 'UNPAIRED' | 'LIAISON_ERR_PEER_BLOCKED'): void {
    const d = this.#dialers.get(peerId);
    if (d?.timer) clearTimeout(d.timer);
    this.#dialers.delete(peerId);
    this.#links.get(peerId)?.close(reason);
  }

  /** A peer was paired or unblocked, or its address changed: (re)start dialing it. */
  peerChanged(peerId: string): void {
    const p = this.#o.directory.get(peerId);
    if (p === null || p.status !== 'paired') return this.disconnect(peerId, 'UNPAIRED');
    if (this.link(peerId) === null) this.#scheduleDial(peerId, 0);
  }

  /**
   * Pairs with the node that issued `text`: dials it with IKpsk2 using the invitation's secret,
   * checks its hello against the invitation, pins it. Resolves with the peer's node ID.
   */
  async acceptInvitation(text: string): Promise<string> {
    const inv = decodeInvitation(text, this.#o.clock.now());
    const self = this.#o.self();
    if (equalBytes(inv.inviter.nodeId, self.identity.nodeId))
      throw new LiaisonError('LIAISON_ERR_CONFLICT', 'this is our own invitation');
    const peerId = nodeIdToText(inv.inviter.nodeId);
    const existing = this.#o.directory.get(peerId);
    if (existing?.status === 'blocked') throw new LiaisonError('LIAISON_ERR_PEER_BLOCKED');
    const est = await dial({
      url: inv.address,
      mode: 'invitation',
      remoteStatic: inv.inviter.keyRecord.dhKey.bytes,
      psk: inv.secret,
      invitationId: inv.id,
      self,
      now: () => this.#o.clock.now(),
      timeoutMs: this.#timeoutMs,
      ...(this.#o.dialTls === undefined ? {} : { tls: this.#o.dialTls }),
      verify: (hello) => {
        if (
          !equalBytes(hello.identity.nodeId, inv.inviter.nodeId) ||
          !equalBytes(hello.identity.identityKey.bytes, inv.inviter.identityKey.bytes)
        ) {
          throw new LiaisonError(
            'LIAISON_ERR_LINK_HELLO_INVALID',
            'the responder is not the inviter',
          );
        }
      },
    });
    try {
      this.#o.directory.pairedWithInviter(inv, est.hello, this.#o.clock.now());
    } catch (err) {
      // Pinning failed after the handshake (e.g. this node already pins another key for that
      // ID): the authenticated socket must not be left open with nobody reading it.
      est.ws.close(closeCodeFor(codeOf(err)), codeOf(err).slice(0, 100));
      throw err;
    }
    this.#established(peerId, est.ws, est.transport, est.pending, true, 'invitation');
    return peerId;
  }

  #accept(ws: WebSocket, req: IncomingMessage): void {
    this.#pending += 1;
    const address = req.socket.remoteAddress ?? '?';
    this.#pendingByAddress.set(address, (this.#pendingByAddress.get(address) ?? 0) + 1);
    const remote = `${address}:${req.socket.remotePort}`;
    let released = false;
    const release = () => {
      if (!released) {
        released = true;
        this.#pending -= 1;
        const n = (this.#pendingByAddress.get(address) ?? 1) - 1;
        if (n <= 0) this.#pendingByAddress.delete(address);
        else this.#pendingByAddress.set(address, n);
      }
    };
    const self = this.#o.self();
    respond(ws, {
      self,
      staticKeys: [self.identity.dhKey, ...self.identity.previousDhKeys],
      now: () => this.#o.clock.now(),
      timeoutMs: this.#timeoutMs,
      invitationSecret: (id) => this.#o.directory.invitationSecret(id),
      precheck: (claim, mode) => this.#precheckInitiator(claim, mode),
      verify: (hello, mode) => this.#verifyInitiator(hello, mode),
    }).then(
      (r) => {
        release();
        const peerId = nodeIdToText(r.hello.identity.nodeId);
        try {
          if (r.mode === 'invitation') {
            this.#o.directory.pairedByInvitation(r.invitationId!, r.hello, this.#o.clock.now());
          } else {
            this.#applyHello(peerId, r.hello);
          }
        } catch (err) {
          this.#o.log.warn(
            { remote, peer: peerId, code: codeOf(err) },
            'pairing refused after handshake',
          );
          // Stop reading at once and cut the socket: nothing it sends may accumulate.
          ws.removeAllListeners('message');
          r.transport.send.destroy();
          r.transport.receive.destroy();
          ws.close(closeCodeFor(codeOf(err)), codeOf(err).slice(0, 100));
          setTimeout(() => ws.terminate(), 1000).unref();
          return;
        }
        this.#established(peerId, ws, r.transport, r.pending, false, r.mode);
      },
      (err: unknown) => {
        release();
        // Each refusal is logged with its code, up to a budget per second; beyond it a flood is
        // summarised once a second instead of writing a line per attempt.
        if (this.#refusalLog.allow(this.#o.clock.now())) {
          this.#o.log.warn({ remote, code: codeOf(err) }, 'inbound handshake refused');
        }
      },
    );
  }

  /**
   * Responder's cheap check of who a message 1 claims to come from, before its hello is verified
   * (key histories cost signature checks; an attacker can replay a message 1 for free).
   */
  #precheckInitiator(claim: { nodeId: Uint8Array; identityKey: Uint8Array }, mode: LinkMode): void {
    if (equalBytes(claim.nodeId, this.#o.self().identity.nodeId))
      throw new LiaisonError('LIAISON_ERR_LINK_HELLO_INVALID', 'a link to ourselves');
    const peer = this.#o.directory.get(nodeIdToText(asNodeId(Uint8Array.from(claim.nodeId))));
    if (peer?.status === 'blocked') throw new LiaisonError('LIAISON_ERR_PEER_BLOCKED');
    if (mode === 'paired' && peer === null) throw new LiaisonError('LIAISON_ERR_PEER_UNKNOWN');
    if (peer !== null && !equalBytes(peer.identityKey, claim.identityKey)) {
      throw new LiaisonError(
        'LIAISON_ERR_LINK_HELLO_INVALID',
        'identity key differs from the pinned one',
      );
    }
  }

  /** Responder's check of an initiator hello (before it answers). */
  #verifyInitiator(hello: Hello, mode: LinkMode): void {
    const id = nodeIdToText(hello.identity.nodeId);
    if (equalBytes(hello.identity.nodeId, this.#o.self().identity.nodeId))
      throw new LiaisonError('LIAISON_ERR_LINK_HELLO_INVALID', 'a link to ourselves');
    const peer = this.#o.directory.get(id);
    if (peer?.status === 'blocked') throw new LiaisonError('LIAISON_ERR_PEER_BLOCKED');
    if (mode === 'invitation') {
      // Re-pairing a node we already know is allowed only with the same identity key.
      if (peer !== null && !equalBytes(peer.identityKey, hello.identity.identityKey.bytes)) {
        throw new LiaisonError(
          'LIAISON_ERR_LINK_HELLO_INVALID',
          'a different identity key for a paired node',
        );
      }
      return;
    }
    if (peer === null) throw new LiaisonError('LIAISON_ERR_PEER_UNKNOWN');
    this.#checkPinned(peer, hello);
  }

  /** A paired peer's hello: same identity key, and a key record no older than the one we hold. */
  #checkPinned(peer: KnownPeer, hello: Hello): void {
    if (!equalBytes(peer.identityKey, hello.identity.identityKey.bytes)) {
      throw new LiaisonError(
        'LIAISON_ERR_LINK_HELLO_INVALID',
        'identity key differs from the pinned one',
      );
    }
    const rec = hello.identity.keyRecord;
    if (rec.serial < peer.keyRecordSerial)
      throw new LiaisonError(
        'LIAISON_ERR_LINK_HELLO_INVALID',
        'key record older than the one we hold',
      );
    if (rec.serial === peer.keyRecordSerial && !equalBytes(rec.dhKey.bytes, peer.dhKey)) {
      throw new LiaisonError('LIAISON_ERR_LINK_HELLO_INVALID', 'two key records with one serial');
    }
  }

  /**
   * What a verified hello changes about a pinned peer: a newer key record, a new address. Applied
   * only once the handshake is complete (READY received or sent), never on message 1: a replayed
   * message 1 must not change anything.
   */
  #applyHello(peerId: string, hello: Hello): void {
    const peer = this.#o.directory.get(peerId);
    if (peer === null || peer.status !== 'paired') return;
    const rec = hello.identity.keyRecord;
    if (rec.serial > peer.keyRecordSerial) this.#o.directory.peerKeyRecord(peer.nodeId, rec);
    // A peer that moved (a new port after a restart) says so in its authenticated hello.
    if (hello.address !== null && hello.address !== peer.address && isLinkAddress(hello.address)) {
      this.#o.directory.peerAddress(peer.nodeId, hello.address);
    }
  }

  #scheduleDial(peerId: string, delayMs: number): void {
    if (this.#stopping) return;
    const d = this.#dialers.get(peerId) ?? { attempt: 0, timer: null, dialing: false };
    this.#dialers.set(peerId, d);
    if (d.timer !== null || d.dialing) return;
    d.timer = setTimeout(() => {
      d.timer = null;
      void this.#dial(peerId, d);
    }, delayMs);
    d.timer.unref();
  }

  async #dial(peerId: string, d: Dialer): Promise<void> {
    const peer = this.#o.directory.get(peerId);
    if (
      this.#stopping ||
      peer === null ||
      peer.status !== 'paired' ||
      peer.address === null ||
      this.link(peerId) !== null
    )
      return;
    d.dialing = true;
    try {
      const est = await dial({
        url: peer.address,
        mode: 'paired',
        remoteStatic: peer.dhKey,
        self: this.#o.self(),
        now: () => this.#o.clock.now(),
        timeoutMs: this.#timeoutMs,
        ...(this.#o.dialTls === undefined ? {} : { tls: this.#o.dialTls }),
        verify: (hello) => {
          if (nodeIdToText(hello.identity.nodeId) !== peerId)
            throw new LiaisonError('LIAISON_ERR_LINK_HELLO_INVALID', 'another node answered');
          this.#checkPinned(peer, hello);
        },
      });
      d.dialing = false;
      this.#applyHello(peerId, est.hello);
      this.#established(peerId, est.ws, est.transport, est.pending, true, 'paired');
    } catch (err) {
      d.dialing = false;
      if (this.#stopping) return;
      const r = this.#o.reconnect ?? {
        baseMs: RECONNECT_BASE_MS,
        maxMs: RECONNECT_MAX_MS,
        resetAfterMs: RECONNECT_RESET_AFTER_MS,
      };
      // Full jitter (uniform in [0, min(max, base * 2^attempt)]): peers that lost a link at the
      // same moment do not come back in lockstep.
      const ceiling = Math.min(r.maxMs, r.baseMs * 2 ** Math.min(d.attempt, 20));
      const delay = Math.floor((this.#o.random ?? Math.random)() * ceiling);
      d.attempt += 1;
      this.#o.log.info({ peer: peerId, code: codeOf(err), retryInMs: delay }, 'dial failed');
      if (this.link(peerId) === null) this.#scheduleDial(peerId, delay);
    }
  }

  #established(
    peerId: string,
    ws: WebSocket,
    transport: TransportPair,
    pending: Buffer[],
    initiator: boolean,
    mode: LinkMode,
  ): void {
    const link = new PeerLink(ws, transport, {
      peerId,
      initiator,
      clock: this.#o.clock,
      pending,
      ...(this.#o.limits === undefined ? {} : { limits: this.#o.limits }),
      handlers: {
        onFrame: (l, f) => this.#onFrame(l, f),
        onClose: (l, reason) => this.#onClose(l, reason),
      },
    });
    // The peer may have been blocked or unpaired while this handshake was in flight: the check at
    // message 1 is not enough, so ask again now that the link would come up.
    const now = this.#o.directory.get(peerId);
    if (now === null || now.status !== 'paired') {
      link.close(now === null ? 'UNPAIRED' : 'LIAISON_ERR_PEER_BLOCKED');
      return;
    }
    const existing = this.#links.get(peerId);
    if (existing !== undefined && existing.isOpen) {
      // Simultaneous links: keep the one initiated by the node with the smaller node ID. Both
      // sides apply the same rule to the same pair of links, so they keep the same one. Two
      // links with the same initiator: the newer wins (the older is a stale reconnect).
      const keepNew =
        existing.initiator === initiator
          ? true
          : this.#initiatorOf(link) < this.#initiatorOf(existing);
      if (!keepNew) {
        link.close('DUPLICATE_LINK');
        return;
      }
      this.#links.set(peerId, link);
      existing.close('DUPLICATE_LINK');
    } else {
      this.#links.set(peerId, link);
    }
    const d = this.#dialers.get(peerId);
    if (d?.timer) {
      clearTimeout(d.timer);
      d.timer = null;
    }
    this.#touched.delete(peerId);
    this.#touch(peerId);
    this.#o.log.info({ peer: peerId, initiator, mode }, 'link up');
    link.start();
    this.#o.onPeerUp?.(peerId);
  }

  /** Records contact with a peer, at most once per TOUCH_INTERVAL_MS: a database write per frame would cost more than the frame. */
  #touch(peerId: string): void {
    const now = this.#o.clock.now();
    if (now - (this.#touched.get(peerId) ?? 0) < TOUCH_INTERVAL_MS) return;
    this.#touched.set(peerId, now);
    this.#o.directory.touch(peerId, now);
  }

  /** -1 when this node initiated the link, else compares node IDs so both sides agree. */
  #initiatorOf(link: PeerLink): number {
    const me = this.#o.self().identity.nodeId;
    const peer = nodeIdFromText(link.peerId);
    const initiatorId: NodeId = link.initiator ? me : peer;
    const otherId: NodeId = link.initiator ? peer : me;
    return compareBytes(initiatorId, otherId);
  }

  #onFrame(link: PeerLink, frame: Frame): void {
    if (this.#links.get(link.peerId) !== link) return;
    this.#touch(link.peerId);
    if (frame.type === 'DATA') this.#o.onData?.(link.peerId, frame.body);
    else if (frame.type === 'KEY_RECORD') {
      const peer = this.#o.directory.get(link.peerId);
      const rec = frame.record;
      if (
        peer === null ||
        !equalBytes(rec.identityKey.bytes, peer.identityKey) ||
        nodeIdToText(rec.nodeId) !== link.peerId ||
        rec.serial <= peer.keyRecordSerial
      ) {
        link.close('LIAISON_ERR_LINK_HELLO_INVALID');
        return;
      }
      this.#o.directory.peerKeyRecord(link.peerId, rec);
    }
  }

  #onClose(link: PeerLink, reason: string): void {
    if (this.#links.get(link.peerId) !== link) return; // a collapsed duplicate
    this.#links.delete(link.peerId);
    this.#o.log.info({ peer: link.peerId, reason }, 'link down');
    this.#o.onPeerDown?.(link.peerId, reason);
    if (this.#stopping || reason === 'UNPAIRED' || reason === 'LIAISON_ERR_PEER_BLOCKED') return;
    const d = this.#dialers.get(link.peerId) ?? { attempt: 0, timer: null, dialing: false };
    const r = this.#o.reconnect ?? {
      baseMs: RECONNECT_BASE_MS,
      maxMs: RECONNECT_MAX_MS,
      resetAfterMs: RECONNECT_RESET_AFTER_MS,
    };
    if (this.#o.clock.now() - link.establishedAt >= r.resetAfterMs) d.attempt = 0;
    this.#dialers.set(link.peerId, d);
    this.#scheduleDial(
      link.peerId,
      Math.floor((this.#o.random ?? Math.random)() * Math.min(r.maxMs, r.baseMs * 2 ** d.attempt)),
    );
  }

  /** Announces a new static key record to every connected peer. */
  announceKeyRecord(record: KeyRecord): void {
    for (const l of this.#links.values()) if (l.isOpen) l.send({ type: 'KEY_RECORD', record });
  }
}

function codeOf(err: unknown): string {
  return isLiaisonError(err) ? err.code : err instanceof Error ? err.message : String(err);
}
