/** The public surface of protocol/: what node/, cli/ and independent tools import. */
export * from './bytes.ts';
export * from './codec.ts';
export * from './crypto.ts';
export * from './domains.ts';
export * from './envelope.ts';
export * from './errors.ts';
export * from './ids.ts';
export * from './key-record.ts';
export * from './key-rotation.ts';
export * from './key-wrap.ts';
export * from './keys.ts';
export * from './limits.ts';
export * from './payload.ts';
export * from './receipt.ts';
export * from './validity.ts';
export * from './noise.ts';
