/**
 * Byte helpers: hex and base32 text forms, concatenation, non-secret comparison.
 * Secret comparison lives in crypto.ts (constant time).
 */
import { LiaisonError } from './errors.ts';

const HEX = '0123456789abcdef';

export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += HEX[b >> 4]! + HEX[b & 15]!;
  return out;
}

/**
 * Strict lowercase-or-uppercase hex decoding; `label` names the field in the error.
 * @throws LIAISON_ERR_ARGUMENT on odd length or a non-hex character.
 */
export function fromHex(hex: string, label = 'hex'): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new LiaisonError('LIAISON_ERR_ARGUMENT', `${label} is not hex`, { field: label });
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

// RFC 4648 §6 alphabet, lowercased; no padding (lengths are implied by the type).
const B32 = 'abcdefghijklmnopqrstuvwxyz234567';

export function toBase32(bytes: Uint8Array): string {
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += B32[(acc >>> (bits - 5)) & 31]!;
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += B32[(acc << (5 - bits)) & 31]!;
  return out;
}

/**
 * Decodes unpadded lowercase base32. Rejects non-canonical input (non-zero trailing bits, wrong
 * length), so every byte string has exactly one text form.
 * @throws LIAISON_ERR_ARGUMENT
 */
export function fromBase32(text: string, label = 'base32'): Uint8Array {
  const bad = (): LiaisonError =>
    new LiaisonError('LIAISON_ERR_ARGUMENT', `${label} is not canonical base32`, { field: label });
  const rem = text.length % 8;
  if (rem === 1 || rem === 3 || rem === 6) throw bad();
  const out = new Uint8Array(Math.floor((text.length * 5) / 8));
  let acc = 0;
  let bits = 0;
  let j = 0;
  for (const ch of text) {
    const v = B32.indexOf(ch);
    if (v < 0) throw bad();
    acc = ((acc << 5) | v) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      out[j++] = (acc >>> (bits - 8)) & 0xff;
      bits -= 8;
    }
  }
  if ((acc & ((1 << bits) - 1)) !== 0) throw bad();
  return out;
}

export function concat(...parts: readonly Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = new Uint8Array(len);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Equality for public values (IDs, public keys). Not constant time: never use on secrets. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Lexicographic byte order, used for canonical ordering of recipients and map keys. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** Asserts a byte array of an exact length; `label` names it in the error. */
export function abytes(value: Uint8Array, length: number, label: string): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== length) {
    throw new LiaisonError('LIAISON_ERR_ARGUMENT', `${label} must be ${length} bytes`, {
      field: label,
    });
  }
  return value;
}

const utf8Encoder = new TextEncoder();

export function utf8(text: string): Uint8Array {
  return utf8Encoder.encode(text);
}
