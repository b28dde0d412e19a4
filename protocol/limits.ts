/**
 * Named protocol limits. Every decoder checks a length or count against one of these before it
 * allocates or reads further. The values are part of the wire protocol (an independent
 * implementation must enforce the same bounds) and are documented in docs/protocol.md §Limits.
 */

/** Recipients of one envelope: a Joint Investigation Team has 3-8 members; 64 leaves headroom. */
export const MAX_RECIPIENTS = 64;

/** Mailbox name, in bytes (ASCII). */
export const MAX_MAILBOX_BYTES = 64;

/** Authoring user name, in bytes (ASCII). */
export const MAX_AUTHOR_BYTES = 64;

/** Encrypted payload (ciphertext including the 16-byte tag). Attachments travel separately. */
export const MAX_PAYLOAD_BYTES = 4 * 1024 * 1024;

/** A whole encoded envelope: header + payload + wraps + signature, with generous framing room. */
export const MAX_ENVELOPE_BYTES = MAX_PAYLOAD_BYTES + 64 * 1024;

/** Encoded header. 64 recipients at ~140 bytes each fit with room to spare. */
export const MAX_HEADER_BYTES = 16 * 1024;

/** Subject line, in UTF-8 bytes. */
export const MAX_SUBJECT_BYTES = 1024;

/** Message body, in UTF-8 bytes. */
export const MAX_BODY_BYTES = 2 * 1024 * 1024;

/** Case reference, in UTF-8 bytes. */
export const MAX_CASE_REF_BYTES = 128;

/** BCP 47 language tag, in bytes. RFC 5646 §4.4.1 recommends supporting at least 35. */
export const MAX_LANGUAGE_TAG_BYTES = 35;

/** Request-form identifier (e.g. `preservation-request`), in bytes (ASCII). */
export const MAX_FORM_ID_BYTES = 64;

/** Fields in one request form. */
export const MAX_FORM_FIELDS = 256;

/** Form field name, in bytes (ASCII). */
export const MAX_FORM_FIELD_NAME_BYTES = 64;

/** Form field value, in UTF-8 bytes. */
export const MAX_FORM_FIELD_VALUE_BYTES = 64 * 1024;

/** Attachments listed in one payload's manifest. */
export const MAX_ATTACHMENTS = 64;

/** Attachment file name, in UTF-8 bytes. */
export const MAX_ATTACHMENT_NAME_BYTES = 255;

/** Attachment media type, in bytes (ASCII). RFC 6838 §4.2 caps each half at 127. */
export const MAX_MEDIA_TYPE_BYTES = 255;

/** Entries in one batched receipt. */
export const MAX_RECEIPT_ENTRIES = 1024;

/**
 * Longest envelope lifetime (expiresAt - createdAt). A preservation request must survive a long
 * partition, but an envelope must not be replayable for ever: 90 days.
 */
export const MAX_ENVELOPE_LIFETIME_MS = 90 * 24 * 60 * 60 * 1000;

/** How far in the future a createdAt may lie before the envelope is refused (clock skew). */
export const MAX_CLOCK_SKEW_MS = 5 * 60 * 1000;

/** Identity-key rotations in one key history (verifyKeyHistory). */
export const MAX_KEY_HISTORY = 1024;

/** Largest u64 value the decoder accepts where a JavaScript number is produced (2^53 - 1). */
export const MAX_SAFE_U64 = Number.MAX_SAFE_INTEGER;
