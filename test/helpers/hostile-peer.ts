/**
 * A scripted peer on an established link: the test holds the Noise transport cipher states that
 * `dial` returned, so it can send whatever DATA bodies it likes (well formed or not) and read
 * what the node answers. Every transport message from the node is decrypted in order (with the
 * same rekey schedule as the node) and split into its frames (a BATCH carries several, §12.4),
 * PINGs are answered, a CLOSE frame is recorded, and DATA bodies are decoded as delivery messages
 * and queued for the test to take one at a time.
 */
import type WebSocket from 'ws';
import {
  decodeDeliveryMessage,
  decodeWitnessMessage,
  isWitnessMessage,
  decodeFrames,
  encodeEnvelopes,
  encodeFrame,
} from '../../protocol/index.ts';
import type { CipherState, DeliveryMessage, Frame, WitnessMessage } from '../../protocol/index.ts';
import type { Established } from '../../node/link/handshake.ts';
import { REKEY_INTERVAL_MESSAGES } from '../../node/constants.ts';

const EMPTY = new Uint8Array(0);

export interface PeerClosed {
  /** The WebSocket close code the node sent. */
  readonly code: number;
  /** The close reason text (the node puts the error code there). */
  readonly reason: string;
  /** The code of the encrypted CLOSE frame that preceded it, if any. */
  readonly closeFrame: string | null;
}

export class ScriptedPeer {
  readonly ws: WebSocket;
  readonly #send: CipherState;
  readonly #receive: CipherState;
  readonly #queue: DeliveryMessage[] = [];
  #waiter: (() => void) | null = null;
  #closeFrame: string | null = null;
  /** Faults on our side (a message from the node that did not decrypt or decode). */
  readonly faults: string[] = [];
  /** Witness messages the target sent (its checkpoints, for this peer to cosign). */
  readonly witness: WitnessMessage[] = [];
  readonly closed: Promise<PeerClosed>;
  #isClosed = false;

  constructor(est: Established) {
    this.ws = est.ws;
    this.#send = est.transport.send;
    this.#receive = est.transport.receive;
    this.closed = new Promise((resolve) => {
      this.ws.once('close', (code, reason) => {
        this.#isClosed = true;
        resolve({ code, reason: reason.toString(), closeFrame: this.#closeFrame });
        this.#wake();
      });
    });
    for (const data of est.pending) this.#onMessage(data);
    this.ws.on('message', (data) => this.#onMessage(data as Buffer));
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = null;
    w?.();
  }

  #onMessage(data: Buffer): void {
    let frames: Frame[];
    try {
      if (this.#receive.nonce > 0 && this.#receive.nonce % REKEY_INTERVAL_MESSAGES === 0)
        this.#receive.rekey();
      frames = decodeFrames(
        this.#receive.decryptWithAd(
          EMPTY,
          new Uint8Array(data.buffer, data.byteOffset, data.length),
        ),
      );
    } catch (err) {
      this.faults.push(String(err));
      return;
    }
    for (const frame of frames) this.#onFrame(frame);
  }

  #onFrame(frame: Frame): void {
    switch (frame.type) {
      case 'PING':
        this.sendFrame({ type: 'PONG', nonce: frame.nonce });
        return;
      case 'CLOSE':
        this.#closeFrame = frame.code;
        return;
      case 'DATA':
        try {
          // The target also asks its peers to witness its audit log (§15.5): decoded and kept
          // apart, so that delivery tests see delivery messages only.
          if (isWitnessMessage(frame.body)) {
            this.witness.push(decodeWitnessMessage(frame.body));
            return;
          }
          this.#queue.push(decodeDeliveryMessage(frame.body));
        } catch (err) {
          this.faults.push(`undecodable delivery message: ${String(err)}`);
        }
        this.#wake();
        return;
      default:
        return;
    }
  }

  /** Encrypts and sends one frame (ignored once the socket is closed). */
  sendFrame(frame: Frame): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    if (this.#send.nonce > 0 && this.#send.nonce % REKEY_INTERVAL_MESSAGES === 0)
      this.#send.rekey();
    this.ws.send(this.#send.encryptWithAd(EMPTY, encodeFrame(frame)));
  }

  /** Sends one raw DATA body, whatever it holds. */
  sendData(body: Uint8Array): void {
    this.sendFrame({ type: 'DATA', body });
  }

  /** Sends envelopes the way a node does (batched ENVELOPES, or PARTs for a large one). */
  sendEnvelopes(envelopes: readonly Uint8Array[]): void {
    for (const body of encodeEnvelopes(envelopes)) this.sendData(body);
  }

  /** Delivery messages received and not yet taken. */
  get queued(): number {
    return this.#queue.length;
  }

  /** The next delivery message from the node; rejects on timeout or if the link closes first. */
  async next(timeoutMs = 10_000): Promise<DeliveryMessage> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const m = this.#queue.shift();
      if (m !== undefined) return m;
      if (this.#isClosed) throw new Error('the link closed before a delivery message arrived');
      const left = until - Date.now();
      if (left <= 0) throw new Error(`no delivery message within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Resolves once the node has closed the link, or rejects after `timeoutMs`. */
  async waitClosed(timeoutMs = 10_000): Promise<PeerClosed> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.closed,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`link not closed within ${timeoutMs} ms`)),
            timeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    this.ws.close(1000);
  }
}
