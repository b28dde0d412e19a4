/**
 * An established link to one peer: a WebSocket carrying Noise transport messages
 * (docs/protocol.md §12.4). Encrypts and decrypts frames in order, answers pings, keeps the link
 * alive, rekeys on schedule, limits the peer's frame rate, and bounds what is queued for sending.
 * A misbehaving peer is disconnected with a reason code; nothing it sends reaches the node first.
 *
 * Coalescing: the first frame sent in a turn of the event loop leaves at once, as a lone frame;
 * frames sent after it in the same turn are packed as BATCH entries and leave together when the
 * turn ends (setImmediate) or when the next one would not fit in a Noise payload. One AEAD call
 * and one WebSocket message then carry many small frames.
 */
import type WebSocket from 'ws';
import {
  BATCH_ENTRY_HEADER_BYTES,
  closeCodeFor,
  decodeFrames,
  encodeFrame,
  FRAME,
  isLiaisonError,
  LiaisonError,
  MAX_FRAME_BODY_BYTES,
  NOISE_MAX_PAYLOAD_BYTES,
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
/** Where the first entry of a BATCH starts: after the type byte and the entry's length. */
const FIRST_ENTRY_AT = 1 + BATCH_ENTRY_HEADER_BYTES;
/** The coalescing buffer starts this small and grows to a whole Noise payload only if needed. */
const COALESCE_INITIAL_BYTES = 4096;
const COALESCE_MAX_BYTES = FIRST_ENTRY_AT + 1 + MAX_FRAME_BODY_BYTES;

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
  /**
   * Spends `count` tokens at `now` (the caller's clock reading, shared with its other per-frame
   * uses): one per frame, so the frames of a BATCH cost what they would cost one by one.
   */
  take(now: number, count = 1): boolean {
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) * this.rate) / 1000);
    this.#at = now;
    if (this.#tokens < count) return false;
    this.#tokens -= count;
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
  /**
   * Frames waiting for the end of this turn, laid out as a BATCH plaintext: the type byte, then
   * (u16 length || frame) per entry. One entry alone is sent as the frame it holds.
   */
  #coalesce: Uint8Array = EMPTY;
  /** Bytes of #coalesce in use (the BATCH type byte included); 0 while nothing waits. */
  #coalesced = 0;
  #coalescedFrames = 0;
  /** Set while a turn is under way (a frame was sent in it); cleared when the turn ends. */
  #turn: NodeJS.Immediate | null = null;

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

  /** Bytes not yet handed to the kernel: in the socket, and frames waiting for the turn's end. */
  get queuedBytes(): number {
    return this.#ws.bufferedAmount + this.#coalesced;
  }

  /**
   * Sends one frame: encrypted at once if it is the first of this turn of the event loop, else
   * coalesced with the frames that follow it in the turn (the body is copied: the caller may
   * reuse it). Returns false (and sends nothing) when the send queue is over its bound: the
   * caller keeps the data (the outbox is durable) and retries on 'drain'.
   * @throws LIAISON_ERR_LINK_CLOSED
   */
  send(frame: Frame): boolean {
    if (this.#closed) throw new LiaisonError('LIAISON_ERR_LINK_CLOSED');
    if (this.queuedBytes > this.#limits.maxSendQueueBytes) return false;
    this.#queue(frame);
    return true;
  }

  /** Sends `frame` now if the turn has sent nothing yet, else adds it to the BATCH being built. */
  #queue(frame: Frame): void {
    const body = frame.type === 'DATA' ? checkedBody(frame.body) : encodeFrame(frame);
    if (this.#turn === null) {
      // DATA, the hot path, is encrypted as (type byte, body) without assembling the frame first.
      this.#sendMessage(frame.type === 'DATA' ? [DATA_TYPE, body] : body);
      this.#turn = setImmediate(() => this.#endTurn());
      return;
    }
    const length = frame.type === 'DATA' ? 1 + body.length : body.length;
    if (
      this.#coalescedFrames > 0 &&
      this.#coalesced + BATCH_ENTRY_HEADER_BYTES + length > NOISE_MAX_PAYLOAD_BYTES
    )
      this.#flush();
    const at = this.#coalescedFrames === 0 ? 1 : this.#coalesced;
    this.#reserve(at + BATCH_ENTRY_HEADER_BYTES + length);
    const buf = this.#coalesce;
    buf[at] = length >>> 8;
    buf[at + 1] = length & 0xff;
    if (frame.type === 'DATA') {
      buf[at + 2] = FRAME.DATA;
      buf.set(body, at + 3);
    } else buf.set(body, at + 2);
    this.#coalesced = at + BATCH_ENTRY_HEADER_BYTES + length;
    this.#coalescedFrames += 1;
  }

  #reserve(bytes: number): void {
    if (bytes <= this.#coalesce.length) return;
    const grown = new Uint8Array(
      Math.min(
        COALESCE_MAX_BYTES,
        Math.max(bytes, COALESCE_INITIAL_BYTES, 2 * this.#coalesce.length),
      ),
    );
    grown.set(this.#coalesce.subarray(0, this.#coalesced));
    grown[0] = FRAME.BATCH;
    this.#coalesce = grown;
  }

  /** Sends what waits: one entry as the frame it holds, several as one BATCH (§12.4). */
  #flush(): void {
    if (this.#coalescedFrames === 0) return;
    const plaintext =
      this.#coalescedFrames === 1
        ? this.#coalesce.subarray(FIRST_ENTRY_AT, this.#coalesced)
        : this.#coalesce.subarray(0, this.#coalesced);
    this.#coalesced = 0;
    this.#coalescedFrames = 0;
    // Encryption copies the plaintext out, so the buffer is free again once this returns.
    this.#sendMessage(plaintext);
  }

  #endTurn(): void {
    this.#turn = null;
    if (this.#closed) return;
    try {
      this.#flush();
    } catch (err) {
      this.close(isLiaisonError(err) ? err.code : 'SOCKET_ERROR');
    }
  }

  /** Encrypts one plaintext as the next Noise transport message and hands it to the socket. */
  #sendMessage(plaintext: Uint8Array | readonly Uint8Array[]): void {
    // Both sides count Noise messages, not frames: a BATCH is one message (§12.4, Rekey).
    if (this.#send.nonce > 0 && this.#send.nonce % this.#limits.rekeyIntervalMessages === 0)
      this.#send.rekey();
    this.#ws.send(this.#send.encryptWithAd(EMPTY, plaintext));
    this.#lastSent = this.#clock.now();
  }

  /**
   * Closes with a reason: a CLOSE frame when the link is healthy (after the frames already
   * queued, in the same BATCH if some wait), then the WebSocket close code.
   */
  close(reason: string): void {
    if (this.#closed) return;
    try {
      if (this.#ws.readyState === this.#ws.OPEN) {
        this.#queue({ type: 'CLOSE', code: reason.slice(0, 64) });
        this.#flush();
      }
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
    if (this.#turn !== null) clearImmediate(this.#turn);
    this.#turn = null;
    // Frames still waiting are dropped, as the socket's own queue is on a closed link.
    this.#coalesce = EMPTY;
    this.#coalesced = 0;
    this.#coalescedFrames = 0;
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
        this.#queue({ type: 'PING', nonce: ++this.#pingNonce });
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
    let frames: Frame[];
    try {
      if (this.#receive.nonce > 0 && this.#receive.nonce % this.#limits.rekeyIntervalMessages === 0)
        this.#receive.rekey();
      // The message is ours once ws has emitted it: decrypt in place instead of into a copy.
      frames = decodeFrames(
        this.#receive.decryptWithAdInPlace(
          EMPTY,
          new Uint8Array(data.buffer, data.byteOffset, data.length),
        ),
      );
    } catch (err) {
      return this.close(isLiaisonError(err) ? err.code : 'LIAISON_ERR_LINK_FRAME_INVALID');
    }
    this.#lastHeard = now;
    // The message paid one token; the rest of a BATCH's frames pay theirs before any is handled.
    if (frames.length > 1 && !this.#rate.take(now, frames.length - 1))
      return this.close('LIAISON_ERR_LINK_RATE_LIMIT');
    for (const frame of frames) {
      // A frame may end the link (CLOSE, or a fault the handler finds): the rest are dropped.
      if (this.#closed) return;
      this.#onFrame(frame);
    }
  }

  /** Handles one frame, whether it came alone or in a BATCH. */
  #onFrame(frame: Frame): void {
    switch (frame.type) {
      case 'PING':
        // A peer that pings and never reads would grow our send queue: the bound applies here too.
        if (this.queuedBytes > this.#limits.maxSendQueueBytes)
          return this.close('LIAISON_ERR_LINK_OVERLOADED');
        this.#queue({ type: 'PONG', nonce: frame.nonce });
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
