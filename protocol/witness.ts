/**
 * Witnessing between peers (docs/protocol.md §15.5). A node sends each peer its newest
 * checkpoint with a consistency proof from the last checkpoint that peer holds; the peer checks
 * it, keeps it, and answers with its cosignature. The request and answers are C2SP tlog-witness
 * (https://c2sp.org/tlog-witness) bodies, carried in link DATA frames instead of HTTP:
 *
 *   ADD_CHECKPOINT  0x40 ‖ add-checkpoint request body (UTF-8):
 *                   "old " decimal(old size) "\n" (base64(proof hash) "\n")* "\n" checkpoint note
 *   COSIGNATURE     0x41 ‖ cosignature signature lines (UTF-8), the tlog-witness 200 answer
 *   CONFLICT        0x42 ‖ u64 size of the checkpoint the witness holds (the 409 answer)
 *   REFUSED         0x43 ‖ u8 length ‖ error code (ASCII), the 403 / 422 / 400 answers
 *
 * Every answer refers to the request it answers by the checkpoint origin's log, and a node has
 * at most one request in flight per peer, so no request ID is needed.
 */
import { Reader, Writer } from './codec.ts';
import { HASH_BYTES } from './crypto.ts';
import { isLiaisonError, LiaisonError } from './errors.ts';
import { MAX_PROOF_HASHES, MAX_TREE_SIZE } from './merkle.ts';
import { fromStrictBase64, MAX_NOTE_BYTES, parseNote } from './note.ts';
import type { NoteSignature } from './note.ts';
import { MAX_REJECT_CODE_BYTES } from './delivery.ts';

export const WITNESS = {
  ADD_CHECKPOINT: 0x40,
  COSIGNATURE: 0x41,
  CONFLICT: 0x42,
  REFUSED: 0x43,
} as const;

/** tlog-witness: a client MUST NOT send more than 63 consistency proof lines. */
export const MAX_WITNESS_PROOF_LINES = 63;

const ERROR_CODE_PATTERN = /^LIAISON_ERR_[A-Z0-9_]+$/;
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export interface AddCheckpoint {
  readonly oldSize: number;
  readonly proof: readonly Uint8Array[];
  /** The signed checkpoint note, as sent. */
  readonly note: string;
}

export type WitnessMessage =
  | { readonly type: 'ADD_CHECKPOINT'; readonly request: AddCheckpoint }
  | { readonly type: 'COSIGNATURE'; readonly lines: string }
  | { readonly type: 'CONFLICT'; readonly size: number }
  | { readonly type: 'REFUSED'; readonly code: string };

function bad(message: string): LiaisonError {
  return new LiaisonError('LIAISON_ERR_WITNESS_PROTOCOL', message);
}

/** The tlog-witness add-checkpoint body. */
export function formatAddCheckpoint(req: AddCheckpoint): string {
  const proof = req.proof.map((h) => `${Buffer.from(h).toString('base64')}\n`).join('');
  return `old ${req.oldSize}\n${proof}\n${req.note}`;
}

/** @throws LIAISON_ERR_WITNESS_PROTOCOL on any deviation from the grammar. */
export function parseAddCheckpoint(body: string): AddCheckpoint {
  const blank = body.indexOf('\n\n');
  if (blank < 0) throw bad('add-checkpoint: no blank line before the checkpoint');
  const head = body.slice(0, blank).split('\n');
  const note = body.slice(blank + 2);
  const old = /^old (0|[1-9][0-9]{0,15})$/.exec(head[0]!);
  if (old === null) throw bad('add-checkpoint: first line must be "old <size>"');
  const oldSize = Number(old[1]);
  if (!Number.isSafeInteger(oldSize) || oldSize > MAX_TREE_SIZE) throw bad('old size out of range');
  const proofLines = head.slice(1);
  if (proofLines.length > MAX_WITNESS_PROOF_LINES) throw bad('add-checkpoint: proof too long');
  const proof = proofLines.map((line) => {
    const h = fromStrictBase64(line);
    if (h === undefined || h.length !== HASH_BYTES) throw bad('add-checkpoint: bad proof hash');
    return h;
  });
  return { oldSize, proof, note };
}

export function encodeWitnessMessage(m: WitnessMessage): Uint8Array {
  switch (m.type) {
    case 'ADD_CHECKPOINT': {
      const body = encoder.encode(formatAddCheckpoint(m.request));
      const out = new Uint8Array(1 + body.length);
      out[0] = WITNESS.ADD_CHECKPOINT;
      out.set(body, 1);
      return out;
    }
    case 'COSIGNATURE': {
      const body = encoder.encode(m.lines);
      const out = new Uint8Array(1 + body.length);
      out[0] = WITNESS.COSIGNATURE;
      out.set(body, 1);
      return out;
    }
    case 'CONFLICT':
      return new Writer(9).u8(WITNESS.CONFLICT).u64(m.size, 'size').finish();
    case 'REFUSED':
      return new Writer(2 + m.code.length)
        .u8(WITNESS.REFUSED)
        .text(m.code, 1, MAX_REJECT_CODE_BYTES, 'code', 1)
        .finish();
  }
}

/** Whether a DATA body belongs to the witness protocol (its type byte). */
export function isWitnessMessage(body: Uint8Array): boolean {
  return body.length > 0 && body[0]! >= WITNESS.ADD_CHECKPOINT && body[0]! <= WITNESS.REFUSED;
}

/** @throws LIAISON_ERR_WITNESS_PROTOCOL */
export function decodeWitnessMessage(body: Uint8Array): WitnessMessage {
  try {
    return decode(body);
  } catch (err) {
    if (isLiaisonError(err) && err.code !== 'LIAISON_ERR_WITNESS_PROTOCOL')
      throw bad(`${err.code}: ${err.message}`);
    throw err;
  }
}

function decode(body: Uint8Array): WitnessMessage {
  if (body.length === 0) throw bad('empty witness message');
  const text = (): string => {
    // A note of MAX_NOTE_BYTES plus a full proof bounds every text message.
    if (body.length - 1 > MAX_NOTE_BYTES + 64 + MAX_PROOF_HASHES * 45)
      throw bad('message too large');
    try {
      return decoder.decode(body.subarray(1));
    } catch {
      throw bad('not UTF-8');
    }
  };
  switch (body[0]) {
    case WITNESS.ADD_CHECKPOINT:
      return { type: 'ADD_CHECKPOINT', request: parseAddCheckpoint(text()) };
    case WITNESS.COSIGNATURE: {
      const lines = text();
      parseSignatureLines(lines);
      return { type: 'COSIGNATURE', lines };
    }
    case WITNESS.CONFLICT: {
      const r = new Reader(body);
      r.u8('type');
      const size = r.u64('size');
      r.end('CONFLICT');
      return { type: 'CONFLICT', size };
    }
    case WITNESS.REFUSED: {
      const r = new Reader(body);
      r.u8('type');
      const code = r.text(1, MAX_REJECT_CODE_BYTES, 'code', 1);
      r.end('REFUSED');
      if (!ERROR_CODE_PATTERN.test(code)) throw bad('malformed error code');
      return { type: 'REFUSED', code };
    }
    default:
      throw bad(`unknown witness message type 0x${body[0]!.toString(16)}`);
  }
}

/**
 * Signature lines as a tlog-witness answer carries them (each ending in "\n"), parsed with the
 * note grammar by prefixing a placeholder text.
 * @throws LIAISON_ERR_WITNESS_PROTOCOL
 */
export function parseSignatureLines(lines: string): readonly NoteSignature[] {
  try {
    return parseNote(`x\n\n${lines}`).signatures;
  } catch (err) {
    throw bad(`cosignature lines: ${(err as Error).message}`);
  }
}

export type EvidenceFinding = 'fork' | 'inconsistent' | 'rollback';

/**
 * The text whose SHA-256 an `equivocation-detected` entry names (§15.5): a verifier recomputes it
 * from the evidence a bundle carries.
 */
export function evidenceText(
  finding: EvidenceFinding,
  heldNote: string,
  presentedNote: string,
  proof: readonly Uint8Array[],
): string {
  const lines = proof.map((h) => `${Buffer.from(h).toString('base64')}\n`).join('');
  return `liaison-evidence/v1\n${finding}\n${heldNote}\n${presentedNote}\n${lines}`;
}
