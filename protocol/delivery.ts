/**
 * Delivery messages (docs/protocol.md §13): what travels inside the body of a link DATA frame.
 *
 * The link delivers frames in order and authenticates the peer; these messages carry envelopes
 * from their sender to each recipient and carry back the recipient's signed receipts or its
 * reasons for refusing. Small envelopes are batched, many to a frame (a frame costs a Noise
 * encryption, a WebSocket message and a token of the peer's rate limit); an envelope larger than
 * a frame travels as consecutive parts.
 *
 *   ENVELOPES  0x30 ‖ u16 count ‖ count × (u32 length ‖ envelope)
 *   PART       0x31 ‖ u32 total ‖ u32 offset ‖ chunk            (the rest of the body)
 *   RECEIPT    0x32 ‖ receipt                                    (protocol/receipt.ts)
 *   REJECTS    0x33 ‖ u16 count ‖ count × (message ID ‖ u8 length ‖ error code)
 */
import { Reader, Writer } from './codec.ts';
import { isLiaisonError, LiaisonError } from './errors.ts';
import { asMessageId, MESSAGE_ID_BYTES } from './ids.ts';
import type { MessageId } from './ids.ts';
import { MAX_ENVELOPE_BYTES } from './limits.ts';
import { MAX_FRAME_BODY_BYTES } from './link.ts';

export const DELIVERY = {
  ENVELOPES: 0x30,
  PART: 0x31,
  RECEIPT: 0x32,
  REJECTS: 0x33,
} as const;

/** Bytes of an ENVELOPES message before its first entry, and per entry before the envelope. */
const ENVELOPES_HEADER_BYTES = 3;
const ENVELOPE_ENTRY_OVERHEAD = 4;
const PART_HEADER_BYTES = 9;
/** Error codes are ASCII `LIAISON_ERR_…` names; a longer one is malformed. */
export const MAX_REJECT_CODE_BYTES = 64;
const REJECT_CODE_PATTERN = /^LIAISON_ERR_[A-Z0-9_]+$/;
/** Rejections per REJECTS message: a frame's worth of the longest entries. */
export const MAX_REJECTS_PER_MESSAGE = Math.floor(
  (MAX_FRAME_BODY_BYTES - 3) / (MESSAGE_ID_BYTES + 1 + MAX_REJECT_CODE_BYTES),
);
/** Largest envelope that fits whole in an ENVELOPES message of one entry. */
export const MAX_SINGLE_FRAME_ENVELOPE_BYTES =
  MAX_FRAME_BODY_BYTES - ENVELOPES_HEADER_BYTES - ENVELOPE_ENTRY_OVERHEAD;
/** Chunk size of each PART but the last. */
export const PART_CHUNK_BYTES = MAX_FRAME_BODY_BYTES - PART_HEADER_BYTES;

export interface Rejection {
  readonly messageId: MessageId;
  readonly code: string;
}

export type DeliveryMessage =
  | { readonly type: 'ENVELOPES'; readonly envelopes: readonly Uint8Array[] }
  | {
      readonly type: 'PART';
      readonly total: number;
      readonly offset: number;
      readonly chunk: Uint8Array;
    }
  | { readonly type: 'RECEIPT'; readonly receipt: Uint8Array }
  | { readonly type: 'REJECTS'; readonly rejections: readonly Rejection[] };

function bad(message: string, field: string): LiaisonError {
  return new LiaisonError('LIAISON_ERR_DELIVERY_PROTOCOL', message, { field });
}

/**
 * Decodes one DATA body. Lengths are checked against the body before anything is sliced, and
 * slices are views into `body` (the link hands each frame its own buffer).
 * @throws LIAISON_ERR_DELIVERY_PROTOCOL
 */
export function decodeDeliveryMessage(body: Uint8Array): DeliveryMessage {
  try {
    return decodeMessage(body);
  } catch (err) {
    // A structural fault inside a delivery message is a delivery-protocol fault, with one code
    // (as decodeFrame maps its faults to LINK_FRAME_INVALID); the field stays in the detail.
    if (isLiaisonError(err) && err.code.startsWith('LIAISON_ERR_DECODE_'))
      throw bad(`${err.code}: ${err.message}`, String(err.detail?.field ?? 'body'));
    throw err;
  }
}

function decodeMessage(body: Uint8Array): DeliveryMessage {
  if (body.length === 0) throw bad('empty delivery message', 'type');
  const r = new Reader(body);
  const type = r.u8('type');
  switch (type) {
    case DELIVERY.ENVELOPES: {
      const count = r.u16('count');
      if (count === 0) throw bad('ENVELOPES with no entry', 'count');
      const envelopes: Uint8Array[] = [];
      for (let i = 0; i < count; i++)
        envelopes.push(r.bytes(4, MAX_SINGLE_FRAME_ENVELOPE_BYTES, 'envelope', 1));
      r.end('ENVELOPES');
      return { type: 'ENVELOPES', envelopes };
    }
    case DELIVERY.PART: {
      const total = r.u32('total');
      const offset = r.u32('offset');
      const chunk = body.subarray(PART_HEADER_BYTES);
      if (total > MAX_ENVELOPE_BYTES) throw bad(`envelope over ${MAX_ENVELOPE_BYTES}`, 'total');
      if (chunk.length === 0 || offset + chunk.length > total)
        throw bad('part outside its envelope', 'offset');
      return { type: 'PART', total, offset, chunk };
    }
    case DELIVERY.RECEIPT:
      if (body.length < 2) throw bad('empty receipt', 'receipt');
      return { type: 'RECEIPT', receipt: body.subarray(1) };
    case DELIVERY.REJECTS: {
      const count = r.u16('count');
      if (count === 0 || count > MAX_REJECTS_PER_MESSAGE) throw bad('bad count', 'count');
      const rejections: Rejection[] = [];
      for (let i = 0; i < count; i++) {
        const messageId = asMessageId(r.fixed(MESSAGE_ID_BYTES, 'messageId'));
        const code = r.text(1, MAX_REJECT_CODE_BYTES, 'code', 1);
        if (!REJECT_CODE_PATTERN.test(code)) throw bad('malformed error code', 'code');
        rejections.push({ messageId, code });
      }
      r.end('REJECTS');
      return { type: 'REJECTS', rejections };
    }
    default:
      throw bad(`unknown delivery message type 0x${type.toString(16)}`, 'type');
  }
}

/**
 * Packs envelopes into as few DATA bodies as possible, in order: consecutive envelopes that fit
 * share an ENVELOPES message; a larger one becomes a run of PARTs.
 */
export function encodeEnvelopes(envelopes: readonly Uint8Array[]): Uint8Array[] {
  const bodies: Uint8Array[] = [];
  let batch: Uint8Array[] = [];
  let size = ENVELOPES_HEADER_BYTES;
  const flush = (): void => {
    if (batch.length === 0) return;
    const w = new Writer(size).u8(DELIVERY.ENVELOPES).u16(batch.length, 'count');
    for (const e of batch) w.bytes(e, 4, MAX_SINGLE_FRAME_ENVELOPE_BYTES, 'envelope', 1);
    bodies.push(w.finish());
    batch = [];
    size = ENVELOPES_HEADER_BYTES;
  };
  for (const env of envelopes) {
    if (env.length > MAX_ENVELOPE_BYTES)
      throw new LiaisonError('LIAISON_ERR_ENCODE_LIMIT', 'envelope too large', {
        field: 'envelope',
        limit: MAX_ENVELOPE_BYTES,
      });
    if (env.length > MAX_SINGLE_FRAME_ENVELOPE_BYTES) {
      flush();
      for (let offset = 0; offset < env.length; offset += PART_CHUNK_BYTES) {
        const chunk = env.subarray(offset, offset + PART_CHUNK_BYTES);
        bodies.push(
          new Writer(PART_HEADER_BYTES + chunk.length)
            .u8(DELIVERY.PART)
            .u32(env.length, 'total')
            .u32(offset, 'offset')
            .raw(chunk)
            .finish(),
        );
      }
      continue;
    }
    const entry = ENVELOPE_ENTRY_OVERHEAD + env.length;
    if (size + entry > MAX_FRAME_BODY_BYTES || batch.length === 0xffff) flush();
    batch.push(env);
    size += entry;
  }
  flush();
  return bodies;
}

export function encodeReceiptMessage(receipt: Uint8Array): Uint8Array {
  if (receipt.length + 1 > MAX_FRAME_BODY_BYTES)
    throw new LiaisonError('LIAISON_ERR_ENCODE_LIMIT', 'receipt too large for a frame', {
      field: 'receipt',
    });
  return new Writer(1 + receipt.length).u8(DELIVERY.RECEIPT).raw(receipt).finish();
}

/** Splits rejections into as many REJECTS messages as needed. */
export function encodeRejects(rejections: readonly Rejection[]): Uint8Array[] {
  const bodies: Uint8Array[] = [];
  for (let i = 0; i < rejections.length; i += MAX_REJECTS_PER_MESSAGE) {
    const part = rejections.slice(i, i + MAX_REJECTS_PER_MESSAGE);
    const w = new Writer(3 + part.length * (MESSAGE_ID_BYTES + 1 + MAX_REJECT_CODE_BYTES))
      .u8(DELIVERY.REJECTS)
      .u16(part.length, 'count');
    for (const r of part) {
      if (!REJECT_CODE_PATTERN.test(r.code))
        throw new LiaisonError('LIAISON_ERR_ENCODE_VALUE', 'malformed error code', {
          field: 'code',
        });
      w.fixed(r.messageId, MESSAGE_ID_BYTES, 'messageId').text(
        r.code,
        1,
        MAX_REJECT_CODE_BYTES,
        'code',
        1,
      );
    }
    bodies.push(w.finish());
  }
  return bodies;
}

/**
 * Reassembles one envelope from PART messages. Parts of one envelope are consecutive on the link
 * and start at offset 0; the buffer is allocated once the first part has named a total within
 * MAX_ENVELOPE_BYTES, so a peer cannot make us allocate more than a limit's worth.
 */
export class PartAssembler {
  #buffer: Uint8Array | null = null;
  #filled = 0;

  /** The bytes received so far for an incomplete envelope (0 when idle). */
  get pendingBytes(): number {
    return this.#buffer === null ? 0 : this.#filled;
  }

  /**
   * Adds one part; returns the whole envelope when this part completes it.
   * @throws LIAISON_ERR_DELIVERY_PROTOCOL for a part out of sequence
   */
  add(part: { total: number; offset: number; chunk: Uint8Array }): Uint8Array | null {
    if (this.#buffer === null) {
      if (part.offset !== 0) throw bad('first part must start at offset 0', 'offset');
      if (part.total <= MAX_SINGLE_FRAME_ENVELOPE_BYTES)
        throw bad('an envelope that fits a frame must not be split', 'total');
      this.#buffer = new Uint8Array(part.total);
      this.#filled = 0;
    } else if (part.total !== this.#buffer.length || part.offset !== this.#filled) {
      throw bad('part out of sequence', 'offset');
    }
    this.#buffer.set(part.chunk, this.#filled);
    this.#filled += part.chunk.length;
    if (this.#filled < this.#buffer.length) return null;
    const done = this.#buffer;
    this.#buffer = null;
    this.#filled = 0;
    return done;
  }

  /** True if an envelope is half-received: another message kind may interleave, parts may not. */
  get busy(): boolean {
    return this.#buffer !== null;
  }
}
