/**
 * C2SP signed notes (docs/protocol.md §15.2; https://c2sp.org/signed-note), the envelope of
 * checkpoints and cosignatures. The format is Go's golang.org/x/mod/sumdb/note, byte for byte:
 *
 *   note      := text "\n" signature-line+
 *   text      := UTF-8, ends with "\n", no control character except "\n"
 *   sig-line  := "— " name " " base64(key-hash[4] ‖ signature) "\n"      (U+2014 EM DASH)
 *   key-hash  := SHA-256(name ‖ "\n" ‖ type ‖ public key)[0:4]
 *   verifier  := name "+" hex8(key-hash) "+" base64(type ‖ public key)
 *
 * A name is non-empty UTF-8 with no white space and no "+". Type 0x01 is an Ed25519 signature of
 * the text; type 0x04 is a C2SP tlog-cosignature (protocol/cosignature.ts).
 */
import { concat } from './bytes.ts';
import { sha256 } from './crypto.ts';
import { LiaisonError } from './errors.ts';

export const NOTE_KEY_TYPE_ED25519 = 0x01;
export const NOTE_KEY_TYPE_COSIGNATURE_V1 = 0x04;

/** A note's whole size: a checkpoint with a hundred cosignatures is about 17 KiB, and a note
 * with its proof must fit one link frame (§15.5). */
export const MAX_NOTE_BYTES = 32 * 1024;

/** Signature lines in one note: Go's verifier refuses more than 100, so do we. */
export const MAX_NOTE_SIGNATURES = 100;

/** Key names (log origins and witness names), in UTF-8 bytes. */
export const MAX_NOTE_NAME_BYTES = 255;

const SIG_PREFIX = '\u2014 ';
const encoder = new TextEncoder();
const strictDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export interface NoteSignature {
  readonly name: string;
  /** The 4-byte key hash as an unsigned 32-bit number. */
  readonly keyHash: number;
  /** The bytes after the key hash: a 64-byte signature, or timestamp ‖ signature for 0x04. */
  readonly payload: Uint8Array;
}

export interface Note {
  /** The signed text, ending with "\n". */
  readonly text: string;
  readonly signatures: readonly NoteSignature[];
}

function noteFault(message: string): LiaisonError {
  return new LiaisonError('LIAISON_ERR_NOTE_INVALID', message);
}

/** Non-empty, no Unicode white space, no "+", at most MAX_NOTE_NAME_BYTES. */
export function isValidNoteName(name: string): boolean {
  return (
    name.length > 0 &&
    encoder.encode(name).length <= MAX_NOTE_NAME_BYTES &&
    // JavaScript's \s lacks U+0085, which Go's unicode.IsSpace counts as space.
    !/[\s+\u0085]/u.test(name) &&
    isWellFormed(name)
  );
}

function isWellFormed(s: string): boolean {
  // Lone surrogates cannot be encoded as UTF-8; Node 20 lacks String.prototype.isWellFormed.
  return !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);
}

/** SHA-256(name ‖ "\n" ‖ type ‖ key)[0:4], big-endian. */
export function noteKeyHash(name: string, type: number, publicKey: Uint8Array): number {
  const h = sha256(encoder.encode(name), Uint8Array.of(0x0a, type), publicKey);
  return ((h[0]! << 24) | (h[1]! << 16) | (h[2]! << 8) | h[3]!) >>> 0;
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64');
}

/** Strict standard base64: padded, canonical (re-encodes to the same text). */
export function fromStrictBase64(text: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) return undefined;
  const bytes = new Uint8Array(Buffer.from(text, 'base64'));
  return b64(bytes) === text ? bytes : undefined;
}

export interface VerifierKey {
  readonly name: string;
  readonly keyHash: number;
  readonly type: number;
  readonly publicKey: Uint8Array;
}

/** The verifier key text an auditor gives Go's note.NewVerifier: `name+hash+base64(type‖key)`. */
export function formatVerifierKey(name: string, type: number, publicKey: Uint8Array): string {
  if (!isValidNoteName(name)) throw noteFault('invalid key name');
  return `${name}+${hex8(noteKeyHash(name, type, publicKey))}+${b64(concat(Uint8Array.of(type), publicKey))}`;
}

/** @throws LIAISON_ERR_NOTE_INVALID unless `text` is a well-formed verifier key. */
export function parseVerifierKey(text: string): VerifierKey {
  // Split at the first two "+" only: the base64 key may itself contain "+".
  const first = text.indexOf('+');
  const second = first < 0 ? -1 : text.indexOf('+', first + 1);
  if (second < 0) throw noteFault('verifier key: expected name+hash+key');
  const name = text.slice(0, first);
  const hash = text.slice(first + 1, second);
  const key = text.slice(second + 1);
  if (!isValidNoteName(name)) throw noteFault('verifier key: invalid name');
  if (!/^[0-9a-f]{8}$/.test(hash)) throw noteFault('verifier key: hash must be 8 hex digits');
  const raw = fromStrictBase64(key);
  if (raw === undefined || raw.length < 2) throw noteFault('verifier key: bad base64 key');
  const type = raw[0]!;
  const publicKey = raw.subarray(1);
  // Like Go's note.NewVerifier, refuse algorithms we cannot verify (Go knows only 0x01).
  if (type !== NOTE_KEY_TYPE_ED25519 && type !== NOTE_KEY_TYPE_COSIGNATURE_V1) {
    throw noteFault('verifier key: unknown algorithm');
  }
  if (publicKey.length !== 32) throw noteFault('verifier key: Ed25519 keys are 32 bytes');
  const keyHash = Number.parseInt(hash, 16);
  if (noteKeyHash(name, type, publicKey) !== keyHash)
    throw noteFault('verifier key: hash mismatch');
  return { name, keyHash, type, publicKey: Uint8Array.from(publicKey) };
}

/** Checks a note text: UTF-8, ends with "\n", no control character but "\n". */
export function checkNoteText(text: string): void {
  if (text.length === 0 || !text.endsWith('\n')) throw noteFault('text must end with a newline');
  if (!isWellFormed(text)) throw noteFault('text is not valid UTF-8');
  if (/[\u0000-\u0009\u000b-\u001f]/.test(text)) throw noteFault('text has a control character');
}

/** One signature line, without its trailing newline. */
export function formatSignatureLine(sig: NoteSignature): string {
  const head = new Uint8Array(4);
  new DataView(head.buffer).setUint32(0, sig.keyHash);
  return `${SIG_PREFIX}${sig.name} ${b64(concat(head, sig.payload))}`;
}

/** The note: text, a blank line, then one line per signature. */
export function formatNote(text: string, signatures: readonly NoteSignature[]): string {
  checkNoteText(text);
  if (signatures.length === 0) throw noteFault('a note needs at least one signature');
  if (signatures.length > MAX_NOTE_SIGNATURES) throw noteFault('too many signatures');
  return `${text}\n${signatures.map((s) => `${formatSignatureLine(s)}\n`).join('')}`;
}

/**
 * Splits a note into its text and signature lines exactly as Go's note.Open does, without
 * verifying anything: the text ends at the last blank line; every line after it must be a
 * well-formed signature line.
 * @throws LIAISON_ERR_NOTE_INVALID on any deviation.
 */
export function parseNote(input: string | Uint8Array): Note {
  let note: string;
  if (typeof input === 'string') {
    if (input.length > MAX_NOTE_BYTES) throw noteFault('note too large');
    note = input;
    if (!isWellFormed(note)) throw noteFault('note is not valid UTF-8');
  } else {
    if (input.length > MAX_NOTE_BYTES) throw noteFault('note too large');
    try {
      note = strictDecoder.decode(input);
    } catch {
      throw noteFault('note is not valid UTF-8');
    }
  }
  if (encoder.encode(note).length > MAX_NOTE_BYTES) throw noteFault('note too large');
  if (/[\u0000-\u0009\u000b-\u001f]/.test(note)) throw noteFault('note has a control character');
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw noteFault('no blank line before the signatures');
  const text = note.slice(0, split + 1);
  const block = note.slice(split + 2);
  if (block.length === 0 || !block.endsWith('\n')) throw noteFault('no signature lines');
  const lines = block.slice(0, -1).split('\n');
  if (lines.length > MAX_NOTE_SIGNATURES) throw noteFault('too many signatures');
  const signatures: NoteSignature[] = [];
  for (const line of lines) {
    if (!line.startsWith(SIG_PREFIX)) throw noteFault('a signature line must start with "— "');
    const rest = line.slice(SIG_PREFIX.length);
    const space = rest.indexOf(' ');
    if (space < 0) throw noteFault('a signature line needs a name and a signature');
    const name = rest.slice(0, space);
    const raw = fromStrictBase64(rest.slice(space + 1));
    if (!isValidNoteName(name) || raw === undefined || raw.length < 5) {
      throw noteFault('malformed signature line');
    }
    const keyHash = new DataView(raw.buffer, raw.byteOffset, 4).getUint32(0);
    signatures.push({ name, keyHash, payload: raw.subarray(4) });
  }
  return { text, signatures };
}

/** The signatures of `note` made by the key (name, type, key), in order of appearance. */
export function signaturesBy(
  note: Note,
  name: string,
  type: number,
  publicKey: Uint8Array,
): NoteSignature[] {
  const hash = noteKeyHash(name, type, publicKey);
  return note.signatures.filter((s) => s.name === name && s.keyHash === hash);
}

export function noteTextBytes(text: string): Uint8Array {
  return encoder.encode(text);
}
