/**
 * Local accounts and their API tokens (docs/api.md §Authentication). A user has one role:
 *
 *   officer  sends, reads and acknowledges messages
 *   auditor  reads metadata, statuses and the audit log; never message content
 *   admin    peers, invitations, keys, users and tokens; also metadata, never content
 *
 * A token is 'lt_' + base32 of 32 random bytes. Only its BLAKE2b-256 hash is stored, so a copy
 * of the database does not yield a usable token; a token's public ID names it in lists and logs.
 * Every change is audited in the same transaction.
 */
import type Database from 'better-sqlite3';
import {
  blake2b256,
  IDENT_PATTERN,
  LiaisonError,
  randomBytes,
  toBase32,
  toHex,
  utf8,
} from '../protocol/index.ts';
import type { AuditLog } from './audit-log.ts';
import type { Clock } from './clock.ts';
import type { Store } from './store.ts';

export const ROLES = ['officer', 'auditor', 'admin'] as const;
export type Role = (typeof ROLES)[number];
export const API_TOKEN_PREFIX = 'lt_';
export const MAX_USER_NAME_BYTES = 64;
export const MAX_TOKEN_LABEL_BYTES = 200;
/** last_used_at is written at most this often per token: a read must not cost a disk write. */
const TOKEN_TOUCH_INTERVAL_MS = 60_000;
const TOKEN_PATTERN = /^lt_[a-z2-7]{52}$/;

export interface User {
  readonly name: string;
  readonly role: Role;
  readonly createdAt: number;
}

export interface TokenInfo {
  readonly id: string;
  readonly user: string;
  readonly label: string;
  readonly createdAt: number;
  readonly expiresAt: number | null;
  readonly revokedAt: number | null;
  readonly lastUsedAt: number | null;
}

export interface Principal {
  readonly user: string;
  readonly role: Role;
  readonly tokenId: string;
}

/** Hash under which API tokens are stored and looked up. */
export function hashToken(token: string): Uint8Array {
  return blake2b256(utf8(`liaison/v1/api-token:${token}`));
}

export function isRole(v: unknown): v is Role {
  return typeof v === 'string' && (ROLES as readonly string[]).includes(v);
}

function checkUserName(name: string): void {
  if (utf8(name).length > MAX_USER_NAME_BYTES || !IDENT_PATTERN.test(name))
    throw new LiaisonError(
      'LIAISON_ERR_VALIDATION',
      'user name: lower-case letters, digits, ".", "_" and "-", starting and ending with a letter or digit',
      { field: 'name' },
    );
}

function int(v: unknown): number | null {
  return v === null || v === undefined ? null : Number(v);
}

export class Users {
  readonly #db: Database.Database;
  readonly #store: Store;
  readonly #audit: AuditLog;
  readonly #clock: Clock;
  readonly #touched = new Map<string, number>();
  /** Prepared once: authentication runs on every request. */
  readonly #byHash: Database.Statement;

  constructor(store: Store, audit: AuditLog, clock: Clock) {
    this.#store = store;
    this.#db = store.database;
    this.#byHash = this.#db.prepare(
      `SELECT t.id, t.user_name, t.expires_at, t.revoked_at, u.role FROM api_tokens t
       JOIN users u ON u.name = t.user_name WHERE t.token_hash = ?`,
    );
    this.#audit = audit;
    this.#clock = clock;
  }

  /**
   * @throws LIAISON_ERR_VALIDATION for a bad name or role, LIAISON_ERR_CONFLICT if it exists
   */
  add(name: string, role: Role, by: string): User {
    checkUserName(name);
    if (!isRole(role))
      throw new LiaisonError('LIAISON_ERR_VALIDATION', `role: one of ${ROLES.join(', ')}`, {
        field: 'role',
      });
    const now = this.#clock.now();
    return this.#store.transaction(() => {
      if (this.get(name) !== null)
        throw new LiaisonError('LIAISON_ERR_CONFLICT', `user ${name} exists`, { field: 'name' });
      this.#db
        .prepare('INSERT INTO users (name, role, created_at) VALUES (?, ?, ?)')
        .run(name, role, now);
      this.#audit.append('user-changed', now, { subject: name, change: 'created', role, user: by });
      return { name, role, createdAt: now };
    });
  }

  get(name: string): User | null {
    const r = this.#db
      .prepare('SELECT name, role, created_at FROM users WHERE name = ?')
      .get(name) as Record<string, unknown> | undefined;
    return r === undefined ? null : this.#user(r);
  }

  list(): User[] {
    return (
      this.#db.prepare('SELECT name, role, created_at FROM users ORDER BY name').all() as Record<
        string,
        unknown
      >[]
    ).map((r) => this.#user(r));
  }

  #user(r: Record<string, unknown>): User {
    if (!isRole(r.role))
      throw new LiaisonError('LIAISON_ERR_STORE_SCHEMA', 'users.role', {
        table: 'users',
        column: 'role',
      });
    return { name: String(r.name), role: r.role, createdAt: Number(r.created_at) };
  }

  /**
   * Removes a user and its tokens. The last admin cannot be removed: nobody could manage the
   * node through the API afterwards.
   * @throws LIAISON_ERR_NOT_FOUND, LIAISON_ERR_CONFLICT
   */
  remove(name: string, by: string): void {
    const now = this.#clock.now();
    this.#store.transaction(() => {
      const u = this.get(name);
      if (u === null)
        throw new LiaisonError('LIAISON_ERR_NOT_FOUND', `no user ${name}`, { field: 'name' });
      if (u.role === 'admin') {
        const admins = Number(
          (
            this.#db.prepare("SELECT COUNT(*) AS n FROM users WHERE role = 'admin'").get() as {
              n: bigint;
            }
          ).n,
        );
        if (admins <= 1)
          throw new LiaisonError('LIAISON_ERR_CONFLICT', 'cannot remove the last admin', {
            field: 'name',
          });
      }
      for (const t of this.tokens(name))
        if (t.revokedAt === null)
          this.#audit.append('token-changed', now, {
            subject: name,
            tokenId: t.id,
            change: 'revoked',
            user: by,
          });
      this.#db.prepare('DELETE FROM users WHERE name = ?').run(name);
      this.#audit.append('user-changed', now, {
        subject: name,
        change: 'removed',
        role: u.role,
        user: by,
      });
    });
  }

  /**
   * Issues a token for `user`; the token itself is returned once and never stored.
   * @throws LIAISON_ERR_NOT_FOUND, LIAISON_ERR_VALIDATION
   */
  issueToken(
    user: string,
    label: string,
    ttlMs: number | null,
    by: string,
  ): { token: string; info: TokenInfo } {
    if (label.length === 0 || utf8(label).length > MAX_TOKEN_LABEL_BYTES)
      throw new LiaisonError(
        'LIAISON_ERR_VALIDATION',
        `label: 1 to ${MAX_TOKEN_LABEL_BYTES} bytes`,
        { field: 'label' },
      );
    if (ttlMs !== null && (!Number.isSafeInteger(ttlMs) || ttlMs < 60_000))
      throw new LiaisonError('LIAISON_ERR_VALIDATION', 'ttl: at least one minute', {
        field: 'ttlSeconds',
      });
    const now = this.#clock.now();
    const token = API_TOKEN_PREFIX + toBase32(randomBytes(32));
    const id = toHex(randomBytes(8));
    const expiresAt = ttlMs === null ? null : now + ttlMs;
    this.#store.transaction(() => {
      if (this.get(user) === null)
        throw new LiaisonError('LIAISON_ERR_NOT_FOUND', `no user ${user}`, { field: 'user' });
      this.#insertToken(id, user, hashToken(token), label, now, expiresAt);
      this.#audit.append('token-changed', now, {
        subject: user,
        tokenId: id,
        change: 'issued',
        user: by,
      });
    });
    return {
      token,
      info: { id, user, label, createdAt: now, expiresAt, revokedAt: null, lastUsedAt: null },
    };
  }

  /** Inserts a token by hash (used by `liaison init` for the first admin token). */
  addTokenHash(user: string, hash: Uint8Array, label: string): string {
    const now = this.#clock.now();
    const id = toHex(randomBytes(8));
    this.#store.transaction(() => {
      this.#insertToken(id, user, hash, label, now, null);
      this.#audit.append('token-changed', now, {
        subject: user,
        tokenId: id,
        change: 'issued',
        user: 'init',
      });
    });
    return id;
  }

  #insertToken(
    id: string,
    user: string,
    hash: Uint8Array,
    label: string,
    now: number,
    expiresAt: number | null,
  ): void {
    this.#db
      .prepare(
        'INSERT INTO api_tokens (id, user_name, token_hash, label, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)',
      )
      .run(id, user, hash, label, now, expiresAt);
  }

  /** @throws LIAISON_ERR_NOT_FOUND */
  revokeToken(id: string, by: string): void {
    const now = this.#clock.now();
    this.#store.transaction(() => {
      const r = this.#db
        .prepare('SELECT user_name, revoked_at FROM api_tokens WHERE id = ?')
        .get(id) as { user_name: string; revoked_at: bigint | null } | undefined;
      if (r === undefined)
        throw new LiaisonError('LIAISON_ERR_NOT_FOUND', `no token ${id}`, { field: 'id' });
      if (r.revoked_at !== null) return;
      this.#db.prepare('UPDATE api_tokens SET revoked_at = ? WHERE id = ?').run(now, id);
      this.#audit.append('token-changed', now, {
        subject: r.user_name,
        tokenId: id,
        change: 'revoked',
        user: by,
      });
    });
  }

  tokens(user?: string): TokenInfo[] {
    const rows = (
      user === undefined
        ? this.#db.prepare('SELECT * FROM api_tokens ORDER BY created_at, id').all()
        : this.#db
            .prepare('SELECT * FROM api_tokens WHERE user_name = ? ORDER BY created_at, id')
            .all(user)
    ) as Record<string, unknown>[];
    return rows.map((r) => ({
      id: String(r.id),
      user: String(r.user_name),
      label: String(r.label),
      createdAt: Number(r.created_at),
      expiresAt: int(r.expires_at),
      revokedAt: int(r.revoked_at),
      lastUsedAt: int(r.last_used_at),
    }));
  }

  /**
   * The principal a bearer token stands for, or null for an unknown, revoked or expired token
   * (the caller answers 401 without saying which).
   */
  authenticate(token: string): Principal | null {
    if (!TOKEN_PATTERN.test(token)) return null;
    const r = this.#byHash.get(hashToken(token)) as Record<string, unknown> | undefined;
    if (r === undefined || r.revoked_at !== null || !isRole(r.role)) return null;
    const now = this.#clock.now();
    if (r.expires_at !== null && Number(r.expires_at) <= now) return null;
    const id = String(r.id);
    const last = this.#touched.get(id) ?? 0;
    if (now - last >= TOKEN_TOUCH_INTERVAL_MS) {
      this.#touched.set(id, now);
      this.#db.prepare('UPDATE api_tokens SET last_used_at = ? WHERE id = ?').run(now, id);
    }
    return { user: String(r.user_name), role: r.role, tokenId: id };
  }
}
