/**
 * The canonical binary encoding (docs/protocol.md §2).
 *
 * Every Liaison structure is a fixed sequence of fields; there are no tags, no optional
 * re-orderings and no alternative encodings, so a value has exactly one byte representation and
 * re-encoding a decoded value gives back the same bytes. Integers are big-endian. Variable-length
 * fields carry a length prefix that the reader checks against a named limit *before* it slices.
 * Optional fields carry a presence byte that must be 0x00 or 0x01. Text is UTF-8, decoded fatally
 * (no replacement characters, a leading BOM is kept, not stripped).
 */
import { LiaisonError } from './errors.ts';
import type { ErrorCode } from './errors.ts';
import { MAX_SAFE_U64 } from './limits.ts';

const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

/** Restricted ASCII identifiers: mailboxes, user names, form IDs, field names. */
export const IDENT_PATTERN = /^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$/;

export type LengthPrefix = 1 | 2 | 4;

function encodeFail(code: ErrorCode, field: string, why: string): LiaisonError {
  return new LiaisonError(code, `${field}: ${why}`, { field });
}

// Big-endian integers are written and read byte by byte rather than through a DataView: a
// DataView is one more object per Writer and Reader (several per envelope), and asking a small
// typed array for its .buffer makes V8 move it out of the JavaScript heap.
function putU16(buf: Uint8Array, at: number, v: number): void {
  buf[at] = v >>> 8;
  buf[at + 1] = v;
}

function putU32(buf: Uint8Array, at: number, v: number): void {
  buf[at] = v >>> 24;
  buf[at + 1] = v >>> 16;
  buf[at + 2] = v >>> 8;
  buf[at + 3] = v;
}

function getU32(buf: Uint8Array, at: number): number {
  return ((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) >>> 0;
}

export class Writer {
  private buf: Uint8Array;
  /** Whether `buf` is the caller's (see the constructor), so never handed out by finish(). */
  private borrowed: boolean;
  private pos = 0;

  /**
   * @param initial a capacity, or a buffer the caller reuses across encodings, written from its
   *   start (a hot path saves allocating one per call). A writer that outgrows it moves to a buffer
   *   of its own and zeroes the caller's.
   */
  constructor(initial: number | Uint8Array = 256) {
    this.borrowed = typeof initial !== 'number';
    this.buf = typeof initial === 'number' ? new Uint8Array(initial) : initial;
  }

  private reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.pos + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.pos));
    // The old buffer may hold plaintext (payload encoding): zero it before letting it go.
    this.buf.fill(0);
    this.buf = next;
    this.borrowed = false;
  }

  u8(v: number, field = 'u8'): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xff)
      throw encodeFail('LIAISON_ERR_ENCODE_VALUE', field, 'not a u8');
    this.reserve(1);
    this.buf[this.pos++] = v;
    return this;
  }

  u16(v: number, field = 'u16'): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff)
      throw encodeFail('LIAISON_ERR_ENCODE_VALUE', field, 'not a u16');
    this.reserve(2);
    putU16(this.buf, this.pos, v);
    this.pos += 2;
    return this;
  }

  u32(v: number, field = 'u32'): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff)
      throw encodeFail('LIAISON_ERR_ENCODE_VALUE', field, 'not a u32');
    this.reserve(4);
    putU32(this.buf, this.pos, v);
    this.pos += 4;
    return this;
  }

  /** u64 restricted to the safe-integer range, so that decode(encode(x)) is exact in JS. */
  u64(v: number, field = 'u64'): this {
    if (!Number.isSafeInteger(v) || v < 0)
      throw encodeFail('LIAISON_ERR_ENCODE_VALUE', field, 'not a u64 in the safe range');
    this.reserve(8);
    putU32(this.buf, this.pos, Math.floor(v / 0x100000000));
    putU32(this.buf, this.pos + 4, v >>> 0);
    this.pos += 8;
    return this;
  }

  bool(v: boolean): this {
    return this.u8(v ? 1 : 0);
  }

  /** Fixed-length bytes: the length is part of the format, not written. */
  fixed(bytes: Uint8Array, length: number, field: string): this {
    if (bytes.length !== length)
      throw encodeFail('LIAISON_ERR_ENCODE_VALUE', field, `must be ${length} bytes`);
    this.reserve(length);
    this.buf.set(bytes, this.pos);
    this.pos += length;
    return this;
  }

  /** Length-prefixed bytes, checked against `max`. */
  bytes(bytes: Uint8Array, prefix: LengthPrefix, max: number, field: string, min = 0): this {
    if (bytes.length > max)
      throw encodeFail('LIAISON_ERR_ENCODE_LIMIT', field, `${bytes.length} > ${max} bytes`);
    if (bytes.length < min)
      throw encodeFail('LIAISON_ERR_ENCODE_VALUE', field, `shorter than ${min} bytes`);
    if (prefix === 1) this.u8(bytes.length);
    else if (prefix === 2) this.u16(bytes.length);
    else this.u32(bytes.length);
    this.reserve(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
    return this;
  }

  /** Length-prefixed UTF-8 text, encoded straight into the buffer. */
  text(value: string, prefix: LengthPrefix, max: number, field: string, min = 0): this {
    // Every UTF-16 code unit takes at least one UTF-8 byte: refuse before reserving anything.
    if (value.length > max)
      throw encodeFail('LIAISON_ERR_ENCODE_LIMIT', field, `more than ${max} bytes`);
    if (!value.isWellFormed())
      throw encodeFail('LIAISON_ERR_ENCODE_VALUE', field, 'lone surrogate');
    // Try with one byte per code unit (exact for ASCII); only text that did not fit is encoded
    // again with the worst case of 3 bytes per code unit reserved.
    this.reserve(prefix + value.length);
    let { read, written } = utf8Encoder.encodeInto(value, this.buf.subarray(this.pos + prefix));
    if (read < value.length) {
      this.reserve(prefix + value.length * 3);
      ({ read, written } = utf8Encoder.encodeInto(value, this.buf.subarray(this.pos + prefix)));
    }
    if (written > max)
      throw encodeFail('LIAISON_ERR_ENCODE_LIMIT', field, `${written} > ${max} bytes`);
    if (written < min)
      throw encodeFail('LIAISON_ERR_ENCODE_VALUE', field, `shorter than ${min} bytes`);
    if (prefix === 1) this.buf[this.pos] = written;
    else if (prefix === 2) putU16(this.buf, this.pos, written);
    else putU32(this.buf, this.pos, written);
    this.pos += prefix + written;
    return this;
  }

  /** Length-prefixed (u8) restricted ASCII identifier, see IDENT_PATTERN. */
  ident(value: string, max: number, field: string): this {
    if (!IDENT_PATTERN.test(value))
      throw encodeFail('LIAISON_ERR_ENCODE_VALUE', field, 'not a valid identifier');
    return this.text(value, 1, max, field, 1);
  }

  /** Raw bytes with no prefix (already-encoded substructures). */
  raw(bytes: Uint8Array): this {
    this.reserve(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
    return this;
  }

  get length(): number {
    return this.pos;
  }

  /** The written bytes, exactly sized (the buffer itself when it is exactly full and ours). */
  finish(): Uint8Array {
    return this.pos === this.buf.length && !this.borrowed ? this.buf : this.buf.slice(0, this.pos);
  }

  /**
   * A view of the written bytes without copying, for transient plaintext that is encrypted and
   * wiped at once; the view may sit in a larger buffer, which the caller should wipe via it.
   */
  finishView(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}

export class Reader {
  private pos = 0;

  constructor(private readonly buf: Uint8Array) {}

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number, field: string): void {
    if (this.buf.length - this.pos < n) {
      throw new LiaisonError('LIAISON_ERR_DECODE_TRUNCATED', `${field} at offset ${this.pos}`, {
        field,
        offset: this.pos,
      });
    }
  }

  u8(field: string): number {
    this.need(1, field);
    return this.buf[this.pos++]!;
  }

  u16(field: string): number {
    this.need(2, field);
    const v = (this.buf[this.pos]! << 8) | this.buf[this.pos + 1]!;
    this.pos += 2;
    return v;
  }

  u32(field: string): number {
    this.need(4, field);
    const v = getU32(this.buf, this.pos);
    this.pos += 4;
    return v;
  }

  /** u64, refused above 2^53 - 1 (no value Liaison writes is that large). */
  u64(field: string): number {
    this.need(8, field);
    const hi = getU32(this.buf, this.pos);
    const lo = getU32(this.buf, this.pos + 4);
    const v = hi * 0x100000000 + lo;
    if (v > MAX_SAFE_U64) {
      throw new LiaisonError('LIAISON_ERR_DECODE_VALUE', `${field}: u64 above 2^53-1`, { field });
    }
    this.pos += 8;
    return v;
  }

  /** A presence flag: exactly 0x00 or 0x01. */
  bool(field: string): boolean {
    const at = this.pos;
    const v = this.u8(field);
    if (v > 1)
      throw new LiaisonError('LIAISON_ERR_DECODE_VALUE', `${field}: flag must be 0 or 1`, {
        field,
        offset: at,
      });
    return v === 1;
  }

  /** Fixed-length bytes; returns a view into the input (callers copy if they keep it mutable). */
  fixed(length: number, field: string): Uint8Array {
    this.need(length, field);
    const out = this.buf.subarray(this.pos, this.pos + length);
    this.pos += length;
    return out;
  }

  /** A length prefix, checked against [min, max] before anything is sliced. */
  length(prefix: LengthPrefix, max: number, field: string, min = 0): number {
    const at = this.pos;
    const n = prefix === 1 ? this.u8(field) : prefix === 2 ? this.u16(field) : this.u32(field);
    if (n > max)
      throw new LiaisonError('LIAISON_ERR_DECODE_LIMIT', `${field}: ${n} > ${max}`, {
        field,
        limit: max,
        offset: at,
      });
    if (n < min)
      throw new LiaisonError('LIAISON_ERR_DECODE_VALUE', `${field}: ${n} < ${min}`, {
        field,
        offset: at,
      });
    return n;
  }

  bytes(prefix: LengthPrefix, max: number, field: string, min = 0): Uint8Array {
    const n = this.length(prefix, max, field, min);
    return this.fixed(n, field);
  }

  text(prefix: LengthPrefix, max: number, field: string, min = 0): string {
    const at = this.pos;
    const raw = this.bytes(prefix, max, field, min);
    try {
      return utf8Decoder.decode(raw);
    } catch {
      throw new LiaisonError('LIAISON_ERR_DECODE_UTF8', field, { field, offset: at });
    }
  }

  ident(max: number, field: string): string {
    const at = this.pos;
    const raw = this.bytes(1, max, field, 1);
    // Checked byte by byte while the string is built, so non-ASCII never reaches the regex.
    // (A loop rather than String.fromCharCode(...raw): spreading a typed array goes through its
    // iterator, about four times slower for an identifier.)
    let s = '';
    for (let i = 0; i < raw.length; i++) {
      const b = raw[i]!;
      if (b > 0x7f)
        throw new LiaisonError('LIAISON_ERR_DECODE_VALUE', `${field}: not an identifier`, {
          field,
          offset: at,
        });
      s += String.fromCharCode(b);
    }
    if (!IDENT_PATTERN.test(s)) {
      throw new LiaisonError('LIAISON_ERR_DECODE_VALUE', `${field}: not an identifier`, {
        field,
        offset: at,
      });
    }
    return s;
  }

  /** A byte that must be one of `allowed` (enumerations). */
  enumU8<T extends number>(allowed: readonly T[], field: string): T {
    const at = this.pos;
    const v = this.u8(field);
    if (!(allowed as readonly number[]).includes(v)) {
      throw new LiaisonError('LIAISON_ERR_DECODE_VALUE', `${field}: unknown value ${v}`, {
        field,
        offset: at,
      });
    }
    return v as T;
  }

  /** Asserts that the whole input was consumed. */
  end(structure: string): void {
    if (this.pos !== this.buf.length) {
      throw new LiaisonError(
        'LIAISON_ERR_DECODE_TRAILING',
        `${this.buf.length - this.pos} bytes after ${structure}`,
        {
          field: structure,
          offset: this.pos,
        },
      );
    }
  }
}

/**
 * Reads the 2-byte preamble every top-level structure starts with: a type tag and a version.
 * A wrong tag and an unknown version are distinct errors so a peer learns which it got wrong.
 */
export function readPreamble(r: Reader, type: number, version: number, structure: string): void {
  const t = r.u8(`${structure}.type`);
  if (t !== type) {
    throw new LiaisonError(
      'LIAISON_ERR_DECODE_TYPE',
      `${structure}: expected type 0x${type.toString(16).padStart(2, '0')}, got 0x${t.toString(16).padStart(2, '0')}`,
      { field: `${structure}.type` },
    );
  }
  const v = r.u8(`${structure}.version`);
  if (v !== version) {
    throw new LiaisonError('LIAISON_ERR_DECODE_VERSION', `${structure}: version ${v}`, {
      field: `${structure}.version`,
    });
  }
}
