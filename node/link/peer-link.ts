/**
 * An established link to one peer: a WebSocket carrying Noise transport messages
 * (docs/protocol.md §12.4). Encrypts and decrypts frames in order, answers pings, keeps the link
 * alive, rekeys on schedule, limits the peer's frame rate, and bounds what is queued for sending.
 * A misbehaving peer is disconnected with a reason code; nothing it sends reaches the node first.
 */
import type WebSocket from 'ws';
import {
  closeCodeFor,
  decodeFrame,
  encodeFrame,
  FRAME,
  isLiaisonError,
  LiaisonError,
  MAX_FRAME_BODY_BYTES,
} from '../../protocol/index.ts';
import type { CipherState, Frame, TransportPair } from '../../protocol/index.ts';
import type { Clock } from '../clock.ts';
import {
  FRAME_BURST,
  IDLE_TIMEOUT_MS,
  KEEPALIVE_INTERVAL_MS,
  MAX_FRAMES_PER_SECOND,
  MAX_LINK_SEND_QUEUE_BYTES,
  REKEY_INTERVAL_MESSAGES,
} from '../constants.ts';

const EMPTY = new Uint8Array(0);
/** Messages kept until start(); a link that is never started (a collapsed duplicate) is cut. */
const MAX_PENDING_MESSAGES = 256;
const DATA_TYPE = Uint8Array.of(FRAME.DATA);

function checkedBody(body: Uint8Array): Uint8Array {
  if (body.length > MAX_FRAME_BODY_BYTES) {
    throw new LiaisonError('LIAISON_ERR_ENCODE_LIMIT', 'frame body too large', {
      field: 'body',
      limit: MAX_FRAME_BODY_BYTES,
    });
  }
  return body;
}

export interface LinkLimits {
  readonly keepaliveIntervalMs: number;
  readonly idleTimeoutMs: number;
  readonly maxFramesPerSecond: number;
  readonly frameBurst: number;
  readonly maxSendQueueBytes: number;
  readonly rekeyIntervalMessages: number;
}

export const DEFAULT_LINK_LIMITS: LinkLimits = {
  keepaliveIntervalMs: KEEPALIVE_INTERVAL_MS,
  idleTimeoutMs: IDLE_TIMEOUT_MS,
  maxFramesPerSecond: MAX_FRAMES_PER_SECOND,
  frameBurst: FRAME_BURST,
  maxSendQueueBytes: MAX_LINK_SEND_QUEUE_BYTES,
  rekeyIntervalMessages: REKEY_INTERVAL_MESSAGES,
};

export interface PeerLinkHandlers {
  /** A frame the link layer does not handle itself (DATA, KEY_RECORD). */
  onFrame(link: PeerLink, frame: Frame): void;
  /** The link is gone; `reason` is an error code or DUPLICATE_LINK / SHUTDOWN / UNPAIRED / PEER_CLOSED. */
  onClose(link: PeerLink, reason: string): void;
}

/** Token bucket; the link passes in its clock's readings. */
class RateLimiter {
  #tokens: number;
  #at: number;
  constructor(
    private readonly rate: number,
    private readonly burst: number,
    start: number,
  ) {
    this.#tokens = burst;
    this.#at = start;
  }
  /** Spends a token at `now` (the caller's clock reading, shared with its other per-frame uses). */
  take(now: number): boolean {
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) * this.rate) / 1000);
    this.#at = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

export class PeerLink {
  readonly peerId: string;
  readonly initiator: boolean;
  readonly establishedAt: number;
  readonly #ws: WebSocket;
  readonly #send: CipherState;
  readonly #receive: CipherState;
  readonly #handlers: PeerLinkHandlers;
  readonly #clock: Clock;
  readonly #limits: LinkLimits;
  readonly #rate: RateLimiter;
  #lastHeard: number;
  #lastSent: number;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;
  #pingNonce = 0;
  #started = false;
  readonly #pending: Buffer[];

  constructor(
    ws: WebSocket,
    transport: TransportPair,
    o: {
      peerId: string;
      initiator: boolean;
      clock: Clock;
      handlers: PeerLinkHandlers;
      limits?: LinkLimits;
      /** Messages that arrived after the handshake, before this link existed. */
      pending?: Buffer[];
    },
  ) {
    this.#ws = ws;
    this.#send = transport.send;
    this.#receive = transport.receive;
    this.peerId = o.peerId;
    this.initiator = o.initiator;
    this.#clock = o.clock;
    this.#handlers = o.handlers;
    this.#limits = o.limits ?? DEFAULT_LINK_LIMITS;
    this.establishedAt = o.clock.now();
    this.#rate = new RateLimiter(
      this.#limits.maxFramesPerSecond,
      this.#limits.frameBurst,
      this.establishedAt,
    );
    this.#lastHeard = this.establishedAt;
    this.#lastSent = this.establishedAt;
    this.#pending = o.pending ?? [];
    ws.removeAllListeners('message');
    ws.on('message', (data, isBinary) => {
      // Until start(), keep messages in order; afterwards handle them as they come.
      if (this.#started) this.#onMessage(data as Buffer, isBinary);
      else if (this.#pending.length >= MAX_PENDING_MESSAGES) ws.terminate();
      else this.#pending.push(data as Buffer);
    });
    ws.on('close', (code) =>
      this.#finish(code === 1000 || code === 1001 ? 'PEER_CLOSED' : `PEER_CLOSED_${code}`),
    );
    ws.on('error', () => this.#finish('SOCKET_ERROR'));
    // The tick is coarse (a quarter of the keepalive interval): liveness, not timing.
    this.#timer = setInterval(
      () => this.#tick(),
      Math.max(50, Math.floor(this.#limits.keepaliveIntervalMs / 4)),
    );
    this.#timer.unref();
    // The socket may have died between the handshake and now: report it once the owner listens.
    if (ws.readyState !== ws.OPEN) queueMicrotask(() => this.#finish('PEER_CLOSED'));
  }

  /** Begins delivering frames (after the owner has registered the link). */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    for (const data of this.#pending.splice(0)) this.#onMessage(data, true);
  }

  get isOpen(): boolean {
    return !this.#closed;
  }

  /** Bytes the socket has not yet handed to the kernel. */
  get queuedBytes(): number {
    return this.#ws.bufferedAmount;
  }

  /**
   * Encrypts and sends one frame. Returns false (and sends nothing) when the send queue is over
   * its bound: the caller keeps the data (the outbox is durable) and retries on 'drain'.
   * @throws LIAISON_ERR_LINK_CLOSED
   */
  send(frame: Frame): boolean {
    if (this.#closed) throw new LiaisonError('LIAISON_ERR_LINK_CLOSED');
    if (this.#ws.bufferedAmount > this.#limits.maxSendQueueBytes) return false;
    this.#sendRaw(frame);
    return true;
  }

  #sendRaw(frame: Frame): void {
    if (this.#send.nonce > 0 && this.#send.nonce % this.#limits.rekeyIntervalMessages === 0)
      this.#send.rekey();
    // DATA, the hot path, is encrypted as (type byte, body) without assembling the frame first.
    const plaintext =
      frame.type === 'DATA' ? [DATA_TYPE, checkedBody(frame.body)] : encodeFrame(frame);
    this.#ws.send(this.#send.encryptWithAd(EMPTY, plaintext));
    this.#lastSent = this.#clock.now();
  }

  /** Closes with a reason: a CLOSE frame when the link is healthy, then the WebSocket close code. */
  close(reason: string): void {
    if (this.#closed) return;
    try {
      if (this.#ws.readyState === this.#ws.OPEN)
        this.#sendRaw({ type: 'CLOSE', code: reason.slice(0, 64) });
    } catch {
      // Best effort: the peer learns the reason from the close code anyway.
    }
    this.#ws.close(closeCodeFor(reason), reason.slice(0, 100));
    this.#finish(reason);
  }

  #finish(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#send.destroy();
    this.#receive.destroy();
    // A socket that does not close politely is cut after a grace period.
    setTimeout(() => this.#ws.terminate(), 2000).unref();
    this.#handlers.onClose(this, reason);
  }

  #tick(): void {
    const now = this.#clock.now();
    if (now - this.#lastHeard > this.#limits.idleTimeoutMs) {
      this.close('LINK_IDLE_TIMEOUT');
      return;
    }
    if (now - this.#lastSent >= this.#limits.keepaliveIntervalMs) {
      try {
        this.#sendRaw({ type: 'PING', nonce: ++this.#pingNonce });
      } catch {
        this.close('SOCKET_ERROR');
      }
    }
  }

  #onMessage(data: Buffer, isBinary: boolean): void {
    if (this.#closed) return;
    if (!isBinary) return this.close('LIAISON_ERR_LINK_FRAME_INVALID');
    // One clock reading per message serves the rate limit and the idle timer.
    const now = this.#clock.now();
    if (!this.#rate.take(now)) return this.close('LIAISON_ERR_LINK_RATE_LIMIT');
    let frame: Frame;
    try {
      if (this.#receive.nonce > 0 && this.#receive.nonce % this.#limits.rekeyIntervalMessages === 0)
        this.#receive.rekey();
      // The message is ours once ws has emitted it: decrypt in place instead of into a copy.
      frame = decodeFrame(
        this.#receive.decryptWithAdInPlace(
          EMPTY,
          new Uint8Array(data.buffer, data.byteOffset, data.length),
        ),
      );
    } catch (err) {
      return this.close(isLiaisonError(err) ? err.code : 'LIAISON_ERR_LINK_FRAME_INVALID');
    }
    this.#lastHeard = now;
    switch (frame.type) {
      case 'PING':
        // A peer that pings and never reads would grow our send queue: the bound applies here too.
        if (this.#ws.bufferedAmount > this.#limits.maxSendQueueBytes)
          return this.close('LIAISON_ERR_LINK_OVERLOADED');
        this.#sendRaw({ type: 'PONG', nonce: frame.nonce });
        return;
      case 'PONG':
        return;
      case 'CLOSE':
        this.#ws.close(closeCodeFor(frame.code));
        this.#finish(`PEER:${frame.code}`);
        return;
      case 'READY':
        // READY is the initiator's first frame and is consumed by the handshake; another is a fault.
        return this.close('LIAISON_ERR_LINK_FRAME_INVALID');
      default:
        this.#handlers.onFrame(this, frame);
    }
  }
}
