/**
 * Checkpoints (docs/protocol.md §15.3; https://c2sp.org/tlog-checkpoint): a node's signed
 * statement of its audit log's size and Merkle root, as a C2SP signed note.
 *
 *   body := origin "\n" decimal(size) "\n" base64(root) "\n" (extension "\n")*
 *
 * A Liaison node's origin is `liaison/` followed by its node ID text (`ln…`), and its note key is
 * its identity key under that name, so anyone holding the pinned identity key can verify its
 * checkpoints with a stock C2SP verifier (docs/audit.md §Verifying without Liaison).
 */
import type { Ed25519PrivateKey, Ed25519PublicKey } from './crypto.ts';
import { HASH_BYTES } from './crypto.ts';
import { LiaisonError } from './errors.ts';
import { nodeIdFromText, nodeIdToText } from './ids.ts';
import type { NodeId } from './ids.ts';
import { MAX_TREE_SIZE } from './merkle.ts';
import {
  checkNoteText,
  formatNote,
  fromStrictBase64,
  isValidNoteName,
  NOTE_KEY_TYPE_ED25519,
  noteKeyHash,
  noteTextBytes,
  parseNote,
  signaturesBy,
} from './note.ts';
import type { Note, NoteSignature } from './note.ts';

export const CHECKPOINT_ORIGIN_PREFIX = 'liaison/';

/** Extension lines a checkpoint may carry; ours carry none, others' are kept and ignored. */
export const MAX_CHECKPOINT_EXTENSIONS = 16;

export interface Checkpoint {
  readonly origin: string;
  readonly size: number;
  readonly rootHash: Uint8Array;
  readonly extensions: readonly string[];
}

function fault(message: string): LiaisonError {
  return new LiaisonError('LIAISON_ERR_CHECKPOINT_INVALID', message);
}

export function originForNode(nodeId: NodeId): string {
  return CHECKPOINT_ORIGIN_PREFIX + nodeIdToText(nodeId);
}

/** The node ID an origin names, or undefined for an origin that is not a Liaison node's. */
export function nodeForOrigin(origin: string): NodeId | undefined {
  if (!origin.startsWith(CHECKPOINT_ORIGIN_PREFIX)) return undefined;
  try {
    return nodeIdFromText(origin.slice(CHECKPOINT_ORIGIN_PREFIX.length));
  } catch {
    return undefined;
  }
}

/** The checkpoint body: the note text that is signed and cosigned. */
export function formatCheckpoint(c: Checkpoint): string {
  // tlog-checkpoint: the origin MUST be non-empty; it only SHOULD be a key name (Go's sumdb
  // origin "go.sum database tree" has spaces). signCheckpoint needs a key name and checks it.
  if (c.origin.length === 0 || c.origin.includes('\n')) throw fault('bad origin line');
  if (!Number.isSafeInteger(c.size) || c.size < 0 || c.size > MAX_TREE_SIZE)
    throw fault('size out of range');
  if (c.rootHash.length !== HASH_BYTES) throw fault('root hash must be 32 bytes');
  if (c.extensions.length > MAX_CHECKPOINT_EXTENSIONS) throw fault('too many extension lines');
  for (const e of c.extensions)
    if (e.length === 0 || e.includes('\n')) throw fault('bad extension line');
  const root = Buffer.from(c.rootHash).toString('base64');
  const text = `${c.origin}\n${c.size}\n${root}\n${c.extensions.map((e) => `${e}\n`).join('')}`;
  checkNoteText(text);
  return text;
}

/**
 * Parses a checkpoint body strictly: canonical decimal size (no sign, no leading zero), a
 * canonical base64 32-byte root, non-empty extension lines.
 * @throws LIAISON_ERR_CHECKPOINT_INVALID
 */
export function parseCheckpoint(text: string): Checkpoint {
  if (!text.endsWith('\n')) throw fault('body must end with a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw fault('expected origin, size and root lines');
  const [origin, sizeText, rootText, ...extensions] = lines as [
    string,
    string,
    string,
    ...string[],
  ];
  if (origin.length === 0) throw fault('empty origin line');
  if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeText)) throw fault('size is not a canonical decimal');
  const size = Number(sizeText);
  if (!Number.isSafeInteger(size)) throw fault('size out of range');
  const rootHash = fromStrictBase64(rootText);
  if (rootHash === undefined || rootHash.length !== HASH_BYTES)
    throw fault('root is not base64 of 32 bytes');
  if (extensions.length > MAX_CHECKPOINT_EXTENSIONS) throw fault('too many extension lines');
  if (extensions.some((e) => e.length === 0)) throw fault('empty extension line');
  return { origin, size, rootHash, extensions };
}

/** Signs a checkpoint as its log: a note with one Ed25519 signature line. */
export function signCheckpoint(c: Checkpoint, key: Ed25519PrivateKey): string {
  if (!isValidNoteName(c.origin)) throw fault('origin is not a valid key name');
  const text = formatCheckpoint(c);
  const sig: NoteSignature = {
    name: c.origin,
    keyHash: noteKeyHash(c.origin, NOTE_KEY_TYPE_ED25519, key.publicKey.bytes),
    payload: key.sign(noteTextBytes(text)),
  };
  return formatNote(text, [sig]);
}

export interface OpenedCheckpoint {
  readonly checkpoint: Checkpoint;
  /** The signed body. */
  readonly text: string;
  readonly note: Note;
}

/**
 * Opens a signed checkpoint: the note must carry a valid Ed25519 signature by `logKey` under the
 * checkpoint's own origin, and the origin must be `expectedOrigin`. Other signature lines
 * (cosignatures, unknown keys) are kept for the caller.
 * @throws LIAISON_ERR_NOTE_INVALID, LIAISON_ERR_CHECKPOINT_INVALID, LIAISON_ERR_NOTE_SIGNATURE
 */
export function openCheckpoint(
  input: string | Uint8Array,
  expectedOrigin: string,
  logKey: Ed25519PublicKey,
): OpenedCheckpoint {
  const note = parseNote(input);
  const checkpoint = parseCheckpoint(note.text);
  if (checkpoint.origin !== expectedOrigin)
    throw fault(`origin ${checkpoint.origin} is not ${expectedOrigin}`);
  const mine = signaturesBy(note, expectedOrigin, NOTE_KEY_TYPE_ED25519, logKey.bytes);
  const message = noteTextBytes(note.text);
  // As Go's note.Open: one signature line by the known key that fails spoils the whole note.
  if (mine.length === 0 || !mine.every((s) => logKey.verify(message, s.payload))) {
    throw new LiaisonError('LIAISON_ERR_NOTE_SIGNATURE', `no valid signature by ${expectedOrigin}`);
  }
  return { checkpoint, text: note.text, note };
}
