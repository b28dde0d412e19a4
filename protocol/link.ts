/**
 * The link layer's wire format (docs/protocol.md §12): what travels inside and around the Noise
 * handshake between two nodes, and the transport frames after it. Pure encoding and checks; the
 * sockets, timers and state machines live in node/link/.
 *
 *   WebSocket, binary messages only, subprotocol "liaison.v1"; one WS message = one Noise message
 *   first message:  u8 mode (0x01 IK | 0x02 IKpsk2) [|| 16-byte invitation ID] || Noise message 1
 *                   whose payload is the initiator's Hello
 *   second message: Noise message 2, payload = the responder's Hello
 *   then:           Noise transport messages, plaintext = u8 frame type || body, or a BATCH of
 *                   several such frames; the first one from the initiator is READY (key
 *                   confirmation, see below)
 */
import { Reader, Writer, readPreamble } from './codec.ts';
import { equalBytes } from './bytes.ts';
import { Ed25519PublicKey } from './crypto.ts';
import { DOMAIN } from './domains.ts';
import { LiaisonError } from './errors.ts';
import type { ErrorCode } from './errors.ts';
import { asNodeId, NODE_ID_BYTES } from './ids.ts';
import type { NodeId } from './ids.ts';
import { decodeKeyRecord, KEY_RECORD_BYTES } from './key-record.ts';
import type { KeyRecord } from './key-record.ts';
import { decodeKeyRotation, KEY_ROTATION_BYTES, verifyKeyHistory } from './key-rotation.ts';
import type { KeyRotation } from './key-rotation.ts';
import { NOISE_MAX_PAYLOAD_BYTES } from './noise.ts';

/** WebSocket subprotocol and path; a node refuses anything else at the upgrade. */
export const LINK_SUBPROTOCOL = 'liaison.v1';
export const LINK_PATH = '/liaison/v1';
/** The Noise prologue: binds the Liaison link protocol and its version into the handshake hash. */
export const LINK_PROLOGUE: Uint8Array = DOMAIN.LINK_PROLOGUE;

export const LINK_MODE = { paired: 0x01, invitation: 0x02 } as const;
export type LinkMode = keyof typeof LINK_MODE;
export const INVITATION_ID_BYTES = 16;
export const INVITATION_SECRET_BYTES = 32;

/** Display names of authorities, in UTF-8 bytes. */
export const MAX_NODE_NAME_BYTES = 128;
/** Identity-key rotations carried in a hello or invitation (a longer history pairs out of band). */
export const MAX_HELLO_ROTATIONS = 16;
/** A dial-back address (ws:// or wss:// URL), in bytes. */
export const MAX_ADDRESS_BYTES = 255;

const HELLO_TYPE = 0x20;
const HELLO_VERSION = 1;

/**
 * Who a node is: its ID, current identity key with the rotation chain from its genesis key, the
 * key record certifying the static key it uses in Noise, and a display name.
 */
export interface IdentityBundle {
  readonly nodeId: NodeId;
  readonly identityKey: Ed25519PublicKey;
  readonly rotations: readonly KeyRotation[];
  readonly keyRecord: KeyRecord;
  readonly name: string;
}

export interface Hello {
  readonly identity: IdentityBundle;
  /** Where the sender of the hello accepts links (null: it only dials out). */
  readonly address: string | null;
}

/** ws:// or wss:// with a host and an explicit or default port; no credentials, no fragment. */
const ADDRESS_PATTERN = /^wss?:\/\/[A-Za-z0-9.\-[\]:]+(?::\d{1,5})?(?:\/[A-Za-z0-9._~/-]*)?$/;

/** Whether `address` is a dial-back address hellos and invitations can carry (§12.1). */
export function isLinkAddress(address: string): boolean {
  return (
    ADDRESS_PATTERN.test(address) && new TextEncoder().encode(address).length <= MAX_ADDRESS_BYTES
  );
}

/** Whether `name` fits an identity bundle (1 to MAX_NODE_NAME_BYTES UTF-8 bytes, well formed). */
export function isNodeName(name: string): boolean {
  const n = new TextEncoder().encode(name).length;
  return name.isWellFormed() && n >= 1 && n <= MAX_NODE_NAME_BYTES;
}

export function encodeIdentity(w: Writer, b: IdentityBundle): Writer {
  if (b.rotations.length > MAX_HELLO_ROTATIONS) {
    throw new LiaisonError(
      'LIAISON_ERR_ENCODE_LIMIT',
      `more than ${MAX_HELLO_ROTATIONS} rotations`,
      { field: 'rotations' },
    );
  }
  w.fixed(b.nodeId, NODE_ID_BYTES, 'nodeId').fixed(b.identityKey.bytes, 32, 'identityKey');
  w.u8(b.rotations.length, 'rotationCount');
  for (const r of b.rotations) w.fixed(r.bytes, KEY_ROTATION_BYTES, 'rotation');
  w.fixed(b.keyRecord.bytes, KEY_RECORD_BYTES, 'keyRecord');
  w.text(b.name, 1, MAX_NODE_NAME_BYTES, 'name', 1);
  return w;
}

/**
 * Decodes an identity bundle and checks it is self-consistent at `now`: the rotation chain leads
 * from the genesis key (which hashes to nodeId) to identityKey, and the key record certifies a
 * static key for this node under identityKey. Whether the node is one we trust is the caller's.
 * @throws LIAISON_ERR_DECODE_*, LIAISON_ERR_KEY_*, LIAISON_ERR_LINK_HELLO_INVALID
 */
export function decodeIdentity(r: Reader, now: number): IdentityBundle {
  const nodeId = asNodeId(Uint8Array.from(r.fixed(NODE_ID_BYTES, 'identity.nodeId')));
  const identityKey = Ed25519PublicKey.fromBytes(
    r.fixed(32, 'identity.identityKey'),
    'identity.identityKey',
  );
  const count = r.length(1, MAX_HELLO_ROTATIONS, 'identity.rotationCount');
  const rotations: KeyRotation[] = [];
  for (let i = 0; i < count; i++)
    rotations.push(decodeKeyRotation(r.fixed(KEY_ROTATION_BYTES, 'identity.rotation')));
  const keyRecord = decodeKeyRecord(r.fixed(KEY_RECORD_BYTES, 'identity.keyRecord'));
  const name = r.text(1, MAX_NODE_NAME_BYTES, 'identity.name', 1);
  const genesis = rotations[0]?.oldKey ?? identityKey;
  let periods;
  try {
    periods = verifyKeyHistory(nodeId, genesis, rotations, now);
  } catch (err) {
    throw helloInvalid(`key history: ${(err as Error).message}`);
  }
  if (!equalBytes(periods[periods.length - 1]!.key.bytes, identityKey.bytes))
    throw helloInvalid('identity key is not the end of its history');
  if (
    !equalBytes(keyRecord.nodeId, nodeId) ||
    !equalBytes(keyRecord.identityKey.bytes, identityKey.bytes)
  ) {
    throw helloInvalid('key record is for another node or identity key');
  }
  return { nodeId, identityKey, rotations, keyRecord, name };
}

function helloInvalid(why: string): LiaisonError {
  return new LiaisonError('LIAISON_ERR_LINK_HELLO_INVALID', why);
}

export function encodeHello(h: Hello): Uint8Array {
  const w = new Writer(600).u8(HELLO_TYPE).u8(HELLO_VERSION);
  encodeIdentity(w, h.identity);
  w.bool(h.address !== null);
  if (h.address !== null) {
    if (!ADDRESS_PATTERN.test(h.address))
      throw new LiaisonError('LIAISON_ERR_ENCODE_VALUE', 'address is not a ws:// or wss:// URL', {
        field: 'address',
      });
    w.text(h.address, 1, MAX_ADDRESS_BYTES, 'address', 1);
  }
  return w.finish();
}

/** @throws as decodeIdentity, and LIAISON_ERR_DECODE_VALUE for a malformed address */
export function decodeHello(bytes: Uint8Array, now: number): Hello {
  const r = new Reader(bytes);
  readPreamble(r, HELLO_TYPE, HELLO_VERSION, 'hello');
  const identity = decodeIdentity(r, now);
  let address: string | null = null;
  if (r.bool('hello.hasAddress')) {
    address = r.text(1, MAX_ADDRESS_BYTES, 'hello.address', 1);
    if (!ADDRESS_PATTERN.test(address))
      throw new LiaisonError(
        'LIAISON_ERR_DECODE_VALUE',
        'hello.address is not a ws:// or wss:// URL',
        { field: 'hello.address' },
      );
  }
  r.end('hello');
  return { identity, address };
}

/**
 * Checks that a verified hello's key record certifies the static key the peer proved in Noise.
 * @throws LIAISON_ERR_LINK_HELLO_INVALID
 */
export function checkHelloMatchesNoise(hello: Hello, remoteStatic: Uint8Array): void {
  if (!equalBytes(hello.identity.keyRecord.dhKey.bytes, remoteStatic)) {
    throw helloInvalid('the key record does not certify the Noise static key');
  }
}

/** The first WebSocket message: mode, the invitation ID for first contact, Noise message 1. */
export interface FirstMessage {
  readonly mode: LinkMode;
  readonly invitationId: Uint8Array | null;
  readonly noise: Uint8Array;
}

export function encodeFirstMessage(m: FirstMessage): Uint8Array {
  const w = new Writer(64 + m.noise.length).u8(LINK_MODE[m.mode]);
  if (m.mode === 'invitation') w.fixed(m.invitationId!, INVITATION_ID_BYTES, 'invitationId');
  return w.raw(m.noise).finish();
}

/** @throws LIAISON_ERR_LINK_FRAME_INVALID */
export function decodeFirstMessage(bytes: Uint8Array): FirstMessage {
  const mode = bytes[0];
  if (mode === LINK_MODE.paired)
    return { mode: 'paired', invitationId: null, noise: bytes.subarray(1) };
  if (mode === LINK_MODE.invitation && bytes.length > 1 + INVITATION_ID_BYTES) {
    return {
      mode: 'invitation',
      invitationId: Uint8Array.from(bytes.subarray(1, 1 + INVITATION_ID_BYTES)),
      noise: bytes.subarray(1 + INVITATION_ID_BYTES),
    };
  }
  throw new LiaisonError(
    'LIAISON_ERR_LINK_FRAME_INVALID',
    'first message: unknown mode or too short',
  );
}

/** Transport frame types (the first plaintext byte of every Noise transport message). */
export const FRAME = {
  /** Initiator's first frame: proves it completed the handshake (key confirmation). */
  READY: 0x01,
  PING: 0x02,
  PONG: 0x03,
  /** Graceful close with a reason code (text). */
  CLOSE: 0x04,
  /** A new key record: the peer rotated its static key. */
  KEY_RECORD: 0x05,
  /** Two or more frames in one transport message (see decodeFrames); never a frame of its own. */
  BATCH: 0x06,
  /** Application data (envelopes, receipts), opaque to the link layer. */
  DATA: 0x10,
} as const;
export type FrameType = keyof typeof FRAME;
const FRAME_BY_BYTE = new Map<number, FrameType>(
  Object.entries(FRAME).map(([k, v]) => [v, k as FrameType]),
);

/** A frame as the link's users see it. BATCH is not one: it only carries frames (decodeFrames). */
export type Frame =
  | { readonly type: 'READY' }
  | { readonly type: 'PING'; readonly nonce: number }
  | { readonly type: 'PONG'; readonly nonce: number }
  | { readonly type: 'CLOSE'; readonly code: string }
  | { readonly type: 'KEY_RECORD'; readonly record: KeyRecord }
  | { readonly type: 'DATA'; readonly body: Uint8Array };

/** Largest DATA body: a Noise transport payload minus the frame type byte. */
export const MAX_FRAME_BODY_BYTES = NOISE_MAX_PAYLOAD_BYTES - 1;
/** Each frame in a BATCH is preceded by its length, a u16 (§12.4). */
export const BATCH_ENTRY_HEADER_BYTES = 2;
/** Fewest frames in a BATCH: a lone frame travels as itself, without BATCH framing. */
export const MIN_BATCH_FRAMES = 2;

export function encodeFrame(f: Frame): Uint8Array {
  const w = new Writer(f.type === 'DATA' ? 1 + f.body.length : 64).u8(FRAME[f.type]);
  switch (f.type) {
    case 'READY':
      break;
    case 'PING':
    case 'PONG':
      w.u64(f.nonce, 'nonce');
      break;
    case 'CLOSE':
      w.text(f.code, 1, 64, 'code', 1);
      break;
    case 'KEY_RECORD':
      w.fixed(f.record.bytes, KEY_RECORD_BYTES, 'record');
      break;
    case 'DATA':
      if (f.body.length > MAX_FRAME_BODY_BYTES)
        throw new LiaisonError('LIAISON_ERR_ENCODE_LIMIT', 'frame body too large', {
          field: 'body',
          limit: MAX_FRAME_BODY_BYTES,
        });
      w.raw(f.body);
      break;
  }
  return w.finish();
}

/**
 * Encodes two or more frames as one BATCH (§12.4): 0x06 || (u16 length || frame) for each, in
 * order. The reference link builds the same bytes in place as it queues frames
 * (node/link/peer-link.ts); this is the specification's encoder, for tests and other
 * implementations.
 * @throws LIAISON_ERR_ENCODE_VALUE (fewer than 2 frames, a READY), LIAISON_ERR_ENCODE_LIMIT (more
 *   than a Noise transport payload)
 */
export function encodeBatch(frames: readonly Frame[]): Uint8Array {
  if (frames.length < MIN_BATCH_FRAMES)
    throw new LiaisonError('LIAISON_ERR_ENCODE_VALUE', 'a BATCH carries at least 2 frames', {
      field: 'frames',
    });
  const encoded = frames.map((f) => {
    if (f.type === 'READY')
      throw new LiaisonError('LIAISON_ERR_ENCODE_VALUE', 'READY is never batched', {
        field: 'frames',
      });
    return encodeFrame(f);
  });
  const length = encoded.reduce((n, e) => n + BATCH_ENTRY_HEADER_BYTES + e.length, 1);
  if (length > NOISE_MAX_PAYLOAD_BYTES)
    throw new LiaisonError('LIAISON_ERR_ENCODE_LIMIT', 'BATCH larger than a Noise payload', {
      field: 'frames',
      limit: NOISE_MAX_PAYLOAD_BYTES,
    });
  const w = new Writer(length).u8(FRAME.BATCH);
  for (const e of encoded) w.u16(e.length, 'length').raw(e);
  return w.finish();
}

function frameInvalid(why: string): LiaisonError {
  return new LiaisonError('LIAISON_ERR_LINK_FRAME_INVALID', why);
}

/**
 * Decodes the plaintext of one transport message into the frames it carries, in order: a lone
 * frame, or the frames of a BATCH (§12.4). A BATCH is decoded whole before any of its frames is
 * returned: entries in order, each one's length (2 bytes present, not 0, within the rest) then the
 * frame itself (not a BATCH, not a READY, then as decodeFrame); after the last entry, at least 2
 * frames.
 * @throws LIAISON_ERR_LINK_FRAME_INVALID; a KEY_RECORD's own faults keep their codes
 */
export function decodeFrames(bytes: Uint8Array): Frame[] {
  if (bytes[0] !== FRAME.BATCH) return [decodeFrame(bytes)];
  const frames: Frame[] = [];
  let at = 1;
  while (at < bytes.length) {
    if (bytes.length - at < BATCH_ENTRY_HEADER_BYTES)
      throw frameInvalid(`BATCH: entry ${frames.length}: truncated length`);
    const n = (bytes[at]! << 8) | bytes[at + 1]!;
    at += BATCH_ENTRY_HEADER_BYTES;
    if (n === 0) throw frameInvalid(`BATCH: entry ${frames.length}: length 0`);
    if (n > bytes.length - at)
      throw frameInvalid(`BATCH: entry ${frames.length}: ${n} bytes, ${bytes.length - at} left`);
    const inner = bytes.subarray(at, at + n);
    if (inner[0] === FRAME.BATCH) throw frameInvalid(`BATCH: entry ${frames.length}: a BATCH`);
    if (inner[0] === FRAME.READY) throw frameInvalid(`BATCH: entry ${frames.length}: a READY`);
    frames.push(decodeFrame(inner));
    at += n;
  }
  if (frames.length < MIN_BATCH_FRAMES)
    throw frameInvalid(`BATCH: ${frames.length} frames, at least ${MIN_BATCH_FRAMES}`);
  return frames;
}

/**
 * Decodes one frame. Any structural fault is LIAISON_ERR_LINK_FRAME_INVALID (the link is closed);
 * a KEY_RECORD's own faults keep their codes. A BATCH is not a frame: a transport message is
 * decoded with decodeFrames, and a BATCH here (the handshake's READY, or nested) is refused.
 */
export function decodeFrame(bytes: Uint8Array): Frame {
  const type = FRAME_BY_BYTE.get(bytes[0] ?? -1);
  if (type === undefined)
    throw new LiaisonError(
      'LIAISON_ERR_LINK_FRAME_INVALID',
      `unknown frame type ${bytes[0] ?? '(empty)'}`,
    );
  // DATA is the hot path and has no structure of its own: no reader needed.
  if (type === 'DATA') return { type, body: bytes.subarray(1) };
  if (type === 'BATCH') throw frameInvalid('a BATCH where a single frame is expected');
  const r = new Reader(bytes.subarray(1));
  const framed = <T>(fn: () => T): T => {
    try {
      const v = fn();
      r.end(`frame ${type}`);
      return v;
    } catch (err) {
      if (err instanceof LiaisonError && err.code.startsWith('LIAISON_ERR_DECODE_')) {
        throw new LiaisonError('LIAISON_ERR_LINK_FRAME_INVALID', `${type}: ${err.message}`);
      }
      throw err;
    }
  };
  switch (type) {
    case 'READY':
      return framed(() => ({ type }));
    case 'PING':
    case 'PONG':
      return framed(() => ({ type, nonce: r.u64('nonce') }));
    case 'CLOSE':
      return framed(() => ({ type, code: r.text(1, 64, 'code', 1) }));
    case 'KEY_RECORD':
      return framed(() => ({
        type,
        record: decodeKeyRecord(Uint8Array.from(r.fixed(KEY_RECORD_BYTES, 'record'))),
      }));
  }
}

/**
 * WebSocket close codes (RFC 6455 §7.4.2 private range 4000-4999) for the reasons a node ends a
 * link, so the other side (and its operator) learns why without a Noise session.
 */
export const CLOSE_CODES: Readonly<
  Partial<Record<ErrorCode | 'DUPLICATE_LINK' | 'SHUTDOWN' | 'UNPAIRED', number>>
> = {
  LIAISON_ERR_LINK_HELLO_INVALID: 4001,
  LIAISON_ERR_PEER_UNKNOWN: 4002,
  LIAISON_ERR_PEER_BLOCKED: 4003,
  LIAISON_ERR_INVITATION_INVALID: 4004,
  LIAISON_ERR_INVITATION_EXPIRED: 4005,
  LIAISON_ERR_INVITATION_USED: 4006,
  LIAISON_ERR_NOISE_DECRYPT: 4007,
  LIAISON_ERR_LINK_HANDSHAKE_TIMEOUT: 4008,
  DUPLICATE_LINK: 4009,
  UNPAIRED: 4010,
  LIAISON_ERR_NOISE_STATE: 4011,
  LIAISON_ERR_NOISE_MESSAGE_SIZE: 4012,
  LIAISON_ERR_LINK_OVERLOADED: 4013,
  LIAISON_ERR_LINK_RATE_LIMIT: 4029,
  LIAISON_ERR_LINK_FRAME_INVALID: 4400,
  SHUTDOWN: 1001,
};

/** The close code for a reason; 4000 for anything without its own. */
export function closeCodeFor(reason: string): number {
  return (CLOSE_CODES as Record<string, number | undefined>)[reason] ?? 4000;
}

/** The reason behind a close code received from a peer (the inverse of closeCodeFor), or null. */
export function reasonForClose(code: number): string | null {
  for (const [reason, c] of Object.entries(CLOSE_CODES))
    if (c === code && code !== 1001) return reason;
  return null;
}
