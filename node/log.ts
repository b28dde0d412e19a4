/**
 * Structured logs (pino, JSON lines on standard output). Secrets and message content never reach
 * a log call by construction (services log codes, node IDs, counts); the redaction list is a
 * second line of defence for fields that must never appear even by mistake.
 */
import pino from 'pino';
import type { LogLevel } from './config.ts';

export type Logger = pino.Logger;

export const REDACTED_FIELDS = [
  'passphrase',
  'secret',
  'psk',
  'token',
  'authorization',
  'req.headers.authorization',
  'contentKey',
  'body',
  'payload',
  'seed',
  '*.passphrase',
  '*.secret',
  '*.token',
  '*.contentKey',
  '*.seed',
];

export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'liaison' },
      redact: { paths: REDACTED_FIELDS, censor: '[redacted]' },
    },
    destination ?? pino.destination(1),
  );
}
