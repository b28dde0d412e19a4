/**
 * The envelope payload (docs/protocol.md §5.4): everything a practitioner wrote, which travels
 * only inside the XChaCha20-Poly1305 ciphertext. Subject, body, language, case reference, the
 * filled request form and the attachment manifest (with each attachment's key) are never in
 * clear on the wire or in a peer's metadata.
 */
import { Reader, Writer, readPreamble } from './codec.ts';
import { compareBytes, utf8 } from './bytes.ts';
import { LiaisonError } from './errors.ts';
import {
  MAX_ATTACHMENT_NAME_BYTES,
  MAX_ATTACHMENTS,
  MAX_BODY_BYTES,
  MAX_CASE_REF_BYTES,
  MAX_FORM_FIELD_NAME_BYTES,
  MAX_FORM_FIELD_VALUE_BYTES,
  MAX_FORM_FIELDS,
  MAX_FORM_ID_BYTES,
  MAX_LANGUAGE_TAG_BYTES,
  MAX_MEDIA_TYPE_BYTES,
  MAX_SUBJECT_BYTES,
} from './limits.ts';

export const PAYLOAD_TYPE = 0x05;
export const PAYLOAD_VERSION = 1;

/** Attachment chunking bounds (plaintext bytes per secretstream chunk). */
export const MIN_ATTACHMENT_CHUNK_BYTES = 1024;
export const MAX_ATTACHMENT_CHUNK_BYTES = 4 * 1024 * 1024;

/** BCP 47 (RFC 5646) well-formedness is out of scope; this is the syntax subset we accept. */
const LANGUAGE_TAG = /^[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*$/;
/** RFC 6838 §4.2 restricted-name, type "/" subtype, lowercase. */
const MEDIA_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/;

export interface FormField {
  readonly name: string;
  readonly value: string;
}

export interface FilledForm {
  /** Schema identifier, e.g. `preservation-request`. */
  readonly formId: string;
  readonly formVersion: number;
  /** Strictly ascending by name (bytewise); sealing sorts them. */
  readonly fields: readonly FormField[];
}

export interface AttachmentManifestEntry {
  readonly name: string;
  readonly mediaType: string;
  readonly size: number;
  readonly chunkSize: number;
  /** BLAKE2b-256 of the whole plaintext file. */
  readonly contentHash: Uint8Array;
  /** crypto_secretstream_xchacha20poly1305 key for this file alone. */
  readonly fileKey: Uint8Array;
  /** The secretstream header (24 bytes) that starts the encrypted stream. */
  readonly streamHeader: Uint8Array;
}

export interface Payload {
  readonly subject: string;
  readonly body: string;
  readonly language: string | null;
  readonly caseRef: string | null;
  readonly form: FilledForm | null;
  readonly attachments: readonly AttachmentManifestEntry[];
}

function checkPattern(
  value: string,
  pattern: RegExp,
  field: string,
  code: 'LIAISON_ERR_ENCODE_VALUE' | 'LIAISON_ERR_DECODE_VALUE',
): void {
  if (!pattern.test(value)) throw new LiaisonError(code, `${field}: invalid syntax`, { field });
}

/**
 * Encodes a payload. Form fields are sorted by name; duplicate names are refused.
 * @throws LIAISON_ERR_ENCODE_VALUE, LIAISON_ERR_ENCODE_LIMIT
 */
export function encodePayload(p: Payload): Uint8Array {
  return encodePayloadInto(new Writer(512 + p.subject.length + p.body.length), p).finish();
}

/** Encodes into `w`, for callers that want a view rather than a copy (sealEnvelope). */
export function encodePayloadInto(w: Writer, p: Payload): Writer {
  w.u8(PAYLOAD_TYPE).u8(PAYLOAD_VERSION);
  w.text(p.subject, 2, MAX_SUBJECT_BYTES, 'subject');
  w.text(p.body, 4, MAX_BODY_BYTES, 'body');
  w.bool(p.language !== null);
  if (p.language !== null) {
    checkPattern(p.language, LANGUAGE_TAG, 'language', 'LIAISON_ERR_ENCODE_VALUE');
    w.text(p.language, 1, MAX_LANGUAGE_TAG_BYTES, 'language', 2);
  }
  w.bool(p.caseRef !== null);
  if (p.caseRef !== null) w.text(p.caseRef, 1, MAX_CASE_REF_BYTES, 'caseRef', 1);
  w.bool(p.form !== null);
  if (p.form !== null) {
    w.ident(p.form.formId, MAX_FORM_ID_BYTES, 'form.formId');
    if (p.form.formVersion < 1)
      throw new LiaisonError('LIAISON_ERR_ENCODE_VALUE', 'form.formVersion must be >= 1', {
        field: 'form.formVersion',
      });
    w.u16(p.form.formVersion, 'form.formVersion');
    if (p.form.fields.length > MAX_FORM_FIELDS) {
      throw new LiaisonError(
        'LIAISON_ERR_ENCODE_LIMIT',
        `form.fields: more than ${MAX_FORM_FIELDS}`,
        { field: 'form.fields' },
      );
    }
    const sorted = [...p.form.fields].sort((a, b) => compareBytes(utf8(a.name), utf8(b.name)));
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i]!.name === sorted[i - 1]!.name) {
        throw new LiaisonError(
          'LIAISON_ERR_ENCODE_VALUE',
          `form field ${sorted[i]!.name} given twice`,
          { field: 'form.fields' },
        );
      }
    }
    w.u16(sorted.length, 'form.fields');
    for (const f of sorted) {
      w.ident(f.name, MAX_FORM_FIELD_NAME_BYTES, 'form.field.name');
      w.text(f.value, 4, MAX_FORM_FIELD_VALUE_BYTES, 'form.field.value');
    }
  }
  if (p.attachments.length > MAX_ATTACHMENTS) {
    throw new LiaisonError(
      'LIAISON_ERR_ENCODE_LIMIT',
      `attachments: more than ${MAX_ATTACHMENTS}`,
      { field: 'attachments' },
    );
  }
  w.u8(p.attachments.length, 'attachments');
  for (const a of p.attachments) {
    w.text(a.name, 1, MAX_ATTACHMENT_NAME_BYTES, 'attachment.name', 1);
    checkPattern(a.mediaType, MEDIA_TYPE, 'attachment.mediaType', 'LIAISON_ERR_ENCODE_VALUE');
    w.text(a.mediaType, 1, MAX_MEDIA_TYPE_BYTES, 'attachment.mediaType', 3);
    w.u64(a.size, 'attachment.size');
    if (a.chunkSize < MIN_ATTACHMENT_CHUNK_BYTES || a.chunkSize > MAX_ATTACHMENT_CHUNK_BYTES) {
      throw new LiaisonError('LIAISON_ERR_ENCODE_VALUE', 'attachment.chunkSize out of range', {
        field: 'attachment.chunkSize',
      });
    }
    w.u32(a.chunkSize, 'attachment.chunkSize');
    w.fixed(a.contentHash, 32, 'attachment.contentHash');
    w.fixed(a.fileKey, 32, 'attachment.fileKey');
    w.fixed(a.streamHeader, 24, 'attachment.streamHeader');
  }
  return w;
}

/**
 * Decodes a payload strictly: exact lengths, flags 0/1, sorted unique form fields, no trailing
 * bytes. Byte arrays in the result are copies (the input may be wiped afterwards).
 * @throws LIAISON_ERR_DECODE_*
 */
export function decodePayload(bytes: Uint8Array): Payload {
  const r = new Reader(bytes);
  readPreamble(r, PAYLOAD_TYPE, PAYLOAD_VERSION, 'payload');
  const subject = r.text(2, MAX_SUBJECT_BYTES, 'payload.subject');
  const body = r.text(4, MAX_BODY_BYTES, 'payload.body');
  let language: string | null = null;
  if (r.bool('payload.hasLanguage')) {
    language = r.text(1, MAX_LANGUAGE_TAG_BYTES, 'payload.language', 2);
    checkPattern(language, LANGUAGE_TAG, 'payload.language', 'LIAISON_ERR_DECODE_VALUE');
  }
  const caseRef = r.bool('payload.hasCaseRef')
    ? r.text(1, MAX_CASE_REF_BYTES, 'payload.caseRef', 1)
    : null;
  let form: FilledForm | null = null;
  if (r.bool('payload.hasForm')) {
    const formId = r.ident(MAX_FORM_ID_BYTES, 'payload.form.formId');
    const formVersion = r.u16('payload.form.formVersion');
    if (formVersion < 1)
      throw new LiaisonError('LIAISON_ERR_DECODE_VALUE', 'payload.form.formVersion must be >= 1', {
        field: 'payload.form.formVersion',
      });
    const count = r.length(2, MAX_FORM_FIELDS, 'payload.form.fieldCount');
    const fields: FormField[] = [];
    let prev: Uint8Array | null = null;
    for (let i = 0; i < count; i++) {
      const name = r.ident(MAX_FORM_FIELD_NAME_BYTES, 'payload.form.field.name');
      const nameBytes = utf8(name);
      if (prev !== null && compareBytes(prev, nameBytes) >= 0) {
        throw new LiaisonError(
          'LIAISON_ERR_DECODE_ORDER',
          'payload.form.fields not strictly ascending',
          { field: 'payload.form.fields' },
        );
      }
      prev = nameBytes;
      fields.push({
        name,
        value: r.text(4, MAX_FORM_FIELD_VALUE_BYTES, 'payload.form.field.value'),
      });
    }
    form = { formId, formVersion, fields };
  }
  const attachmentCount = r.length(1, MAX_ATTACHMENTS, 'payload.attachmentCount');
  const attachments: AttachmentManifestEntry[] = [];
  for (let i = 0; i < attachmentCount; i++) {
    const name = r.text(1, MAX_ATTACHMENT_NAME_BYTES, 'payload.attachment.name', 1);
    const mediaType = r.text(1, MAX_MEDIA_TYPE_BYTES, 'payload.attachment.mediaType', 3);
    checkPattern(mediaType, MEDIA_TYPE, 'payload.attachment.mediaType', 'LIAISON_ERR_DECODE_VALUE');
    const size = r.u64('payload.attachment.size');
    const chunkSize = r.u32('payload.attachment.chunkSize');
    if (chunkSize < MIN_ATTACHMENT_CHUNK_BYTES || chunkSize > MAX_ATTACHMENT_CHUNK_BYTES) {
      throw new LiaisonError(
        'LIAISON_ERR_DECODE_VALUE',
        'payload.attachment.chunkSize out of range',
        { field: 'payload.attachment.chunkSize' },
      );
    }
    attachments.push({
      name,
      mediaType,
      size,
      chunkSize,
      contentHash: Uint8Array.from(r.fixed(32, 'payload.attachment.contentHash')),
      fileKey: Uint8Array.from(r.fixed(32, 'payload.attachment.fileKey')),
      streamHeader: Uint8Array.from(r.fixed(24, 'payload.attachment.streamHeader')),
    });
  }
  r.end('payload');
  return { subject, body, language, caseRef, form, attachments };
}
