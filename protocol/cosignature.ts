/**
 * Cosignatures (docs/protocol.md §15.4; https://c2sp.org/tlog-cosignature): a witness's signed
 * statement that, at a given time, it verified a checkpoint to be consistent with every earlier
 * checkpoint it saw from that log. It is a signed-note signature line of key type 0x04:
 *
 *   signed message := "cosignature/v1\n" "time " decimal(t) "\n" checkpoint-body
 *   payload        := u64 t (big-endian, seconds since the Unix epoch) ‖ Ed25519 signature
 *
 * A Liaison node cosigns under its own origin name (`liaison/ln…`) with its identity key; the
 * key hash differs from its checkpoint key hash by the type byte.
 */
import type { Ed25519PrivateKey, Ed25519PublicKey } from './crypto.ts';
import { ED25519_SIGNATURE_BYTES } from './crypto.ts';
import { LiaisonError } from './errors.ts';
import { NOTE_KEY_TYPE_COSIGNATURE_V1, noteKeyHash, noteTextBytes } from './note.ts';
import type { Note, NoteSignature } from './note.ts';

const COSIGNATURE_PAYLOAD_BYTES = 8 + ED25519_SIGNATURE_BYTES;

export function cosignatureMessage(time: number, checkpointText: string): Uint8Array {
  return noteTextBytes(`cosignature/v1\ntime ${time}\n${checkpointText}`);
}

/** A cosignature of `checkpointText` at `time` (seconds) by witness `name`. */
export function cosign(
  checkpointText: string,
  name: string,
  key: Ed25519PrivateKey,
  time: number,
): NoteSignature {
  if (!Number.isSafeInteger(time) || time < 0)
    throw new LiaisonError('LIAISON_ERR_ARGUMENT', 'cosignature time must be whole seconds');
  const payload = new Uint8Array(COSIGNATURE_PAYLOAD_BYTES);
  new DataView(payload.buffer).setBigUint64(0, BigInt(time));
  payload.set(key.sign(cosignatureMessage(time, checkpointText)), 8);
  return {
    name,
    keyHash: noteKeyHash(name, NOTE_KEY_TYPE_COSIGNATURE_V1, key.publicKey.bytes),
    payload,
  };
}

/**
 * The time of `sig` if it is a valid cosignature of `checkpointText` by witness (`name`, `key`);
 * undefined if it is by another key; throws if it claims this key but does not verify.
 * @throws LIAISON_ERR_NOTE_SIGNATURE
 */
export function verifyCosignature(
  sig: NoteSignature,
  checkpointText: string,
  name: string,
  key: Ed25519PublicKey,
): number | undefined {
  if (
    sig.name !== name ||
    sig.keyHash !== noteKeyHash(name, NOTE_KEY_TYPE_COSIGNATURE_V1, key.bytes)
  )
    return undefined;
  const bad = (why: string): LiaisonError =>
    new LiaisonError('LIAISON_ERR_NOTE_SIGNATURE', `cosignature by ${name}: ${why}`);
  if (sig.payload.length !== COSIGNATURE_PAYLOAD_BYTES) throw bad('wrong length');
  const t = new DataView(sig.payload.buffer, sig.payload.byteOffset, 8).getBigUint64(0);
  if (t > BigInt(Number.MAX_SAFE_INTEGER)) throw bad('time out of range');
  const time = Number(t);
  if (!key.verify(cosignatureMessage(time, checkpointText), sig.payload.subarray(8))) {
    throw bad('signature does not verify');
  }
  return time;
}

/** The valid cosignatures by one witness in a note (duplicates collapse to the latest time). */
export function cosignatureTime(
  note: Note,
  name: string,
  key: Ed25519PublicKey,
): number | undefined {
  let latest: number | undefined;
  for (const s of note.signatures) {
    const t = verifyCosignature(s, note.text, name, key);
    if (t !== undefined && (latest === undefined || t > latest)) latest = t;
  }
  return latest;
}

/** Concatenation helper for callers adding cosignature lines to a checkpoint note. */
export function withSignatures(note: Note, extra: readonly NoteSignature[]): Note {
  return { text: note.text, signatures: concatSignatures(note.signatures, extra) };
}

function concatSignatures(
  a: readonly NoteSignature[],
  b: readonly NoteSignature[],
): NoteSignature[] {
  const seen = new Set(
    a.map((s) => `${s.name} ${s.keyHash} ${Buffer.from(s.payload).toString('base64')}`),
  );
  const out = [...a];
  for (const s of b) {
    const k = `${s.name} ${s.keyHash} ${Buffer.from(s.payload).toString('base64')}`;
    if (!seen.has(k)) {
      seen.add(k);
      out.push(s);
    }
  }
  return out;
}
