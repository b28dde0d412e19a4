/**
 * Selective disclosure (docs/audit.md §Disclosure): an admin discloses one message's content key
 * to one named auditor, with a justification. The auditor fetches the disclosure (the signed
 * envelope, its content key and the sender's identity key) and checks offline that the plaintext
 * is what the sender signed (`liaison audit verify-disclosure`).
 *
 * Both steps are audit entries (`content-disclosed`, `disclosure-consulted`) written in the
 * transaction that makes or reads the disclosure. The content key is not stored with the
 * disclosure: it is unsealed from the message at each fetch, so erasing a message's key later
 * also ends its disclosures.
 */
import type Database from 'better-sqlite3';
import {
  asMessageId,
  LiaisonError,
  messageIdToText,
  nodeIdToText,
  MAX_AUDIT_TEXT_BYTES,
  messageIdFromText,
  nodeIdFromText,
  randomBytes,
  toHex,
  wipe,
} from '../protocol/index.ts';
import type { LocalIdentity } from '../protocol/index.ts';
import type { AuditLog } from './audit-log.ts';
import type { Clock } from './clock.ts';
import type { Delivery } from './delivery.ts';
import type { Store } from './store.ts';
import type { Users } from './users.ts';

export interface Disclosure {
  readonly id: string;
  readonly sender: string;
  readonly messageId: string;
  readonly auditor: string;
  readonly disclosedBy: string;
  readonly justification: string;
  readonly createdAt: number;
  readonly logIndex: number;
}

/** What an auditor receives: everything `verify-disclosure` needs, and nothing else. */
export interface DisclosurePackage extends Disclosure {
  readonly format: 'liaison-disclosure/1';
  /** The signed envelope, base64. */
  readonly envelope: string;
  /** The 32-byte content key, base64. */
  readonly contentKey: string;
  /** The sender's Ed25519 identity key, base64: pinned by this node when it paired. */
  readonly senderIdentityKey: string;
}

export interface DisclosuresDeps {
  readonly store: Store;
  readonly audit: AuditLog;
  readonly clock: Clock;
  readonly delivery: Delivery;
  readonly users: Users;
  readonly identity: () => LocalIdentity;
  /** The identity key pinned for a peer, also after unpairing. */
  readonly peerKey: (nodeId: string) => Uint8Array | null;
}

function toDisclosure(r: Record<string, unknown>): Disclosure {
  return {
    id: r.id as string,
    sender: r.sender as string,
    messageId: r.message_id as string,
    auditor: r.auditor as string,
    disclosedBy: r.disclosed_by as string,
    justification: r.justification as string,
    createdAt: r.created_at as number,
    logIndex: r.log_index as number,
  };
}

export class Disclosures {
  readonly #d: DisclosuresDeps;
  readonly #s: Record<'insert' | 'byId' | 'all' | 'forAuditor', Database.Statement>;

  constructor(d: DisclosuresDeps) {
    this.#d = d;
    const p = (sql: string) => d.store.database.prepare(sql).safeIntegers(false);
    const cols = `d.id, m.sender, d.auditor, d.disclosed_by, d.justification, d.created_at,
      d.log_index, d.message_row, m.message_id AS raw_message_id`;
    this.#s = {
      insert: p(
        `INSERT INTO disclosures (id, message_row, auditor, disclosed_by, justification, created_at, log_index)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      byId: p(
        `SELECT ${cols} FROM disclosures d JOIN messages m ON m.row_id = d.message_row WHERE d.id = ?`,
      ),
      all: p(
        `SELECT ${cols} FROM disclosures d JOIN messages m ON m.row_id = d.message_row ORDER BY d.created_at DESC`,
      ),
      forAuditor: p(
        `SELECT ${cols} FROM disclosures d JOIN messages m ON m.row_id = d.message_row
         WHERE d.auditor = ? ORDER BY d.created_at DESC`,
      ),
    };
  }

  #row(r: Record<string, unknown>): Disclosure {
    const b = r.raw_message_id as Buffer;
    return toDisclosure({ ...r, message_id: messageIdToText(asMessageId(Uint8Array.from(b))) });
  }

  /**
   * Discloses a message's content key to `auditor`.
   * @throws LIAISON_ERR_NOT_FOUND (message), LIAISON_ERR_ARGUMENT (auditor is not an auditor
   *   account, or the justification is empty or too long)
   */
  create(req: {
    messageId: string;
    sender?: string;
    auditor: string;
    justification: string;
    by: string;
  }): Disclosure {
    const auditor = this.#d.users.get(req.auditor);
    if (auditor === null || auditor.role !== 'auditor')
      throw new LiaisonError('LIAISON_ERR_ARGUMENT', `${req.auditor} is not an auditor account`, {
        field: 'auditor',
      });
    const justification = req.justification.trim();
    if (justification.length === 0 || Buffer.byteLength(justification) > MAX_AUDIT_TEXT_BYTES)
      throw new LiaisonError(
        'LIAISON_ERR_ARGUMENT',
        `justification: 1 to ${MAX_AUDIT_TEXT_BYTES} bytes`,
        { field: 'justification' },
      );
    const sealed = this.#d.delivery.sealedMessage(req.messageId, req.sender);
    wipe(sealed.contentKey);
    const id = toHex(randomBytes(8));
    const now = this.#d.clock.now();
    let logIndex = 0;
    this.#d.store.transaction(() => {
      logIndex = this.#d.audit.append('content-disclosed', now, {
        user: req.by,
        auditor: req.auditor,
        sender: nodeIdFromText(sealed.sender),
        messageId: messageIdFromText(req.messageId),
        justification,
      });
      this.#s.insert.run(id, sealed.rowId, req.auditor, req.by, justification, now, logIndex);
    });
    return {
      id,
      sender: sealed.sender,
      messageId: req.messageId,
      auditor: req.auditor,
      disclosedBy: req.by,
      justification,
      createdAt: now,
      logIndex,
    };
  }

  /** Every disclosure (admin), or the ones made to one auditor account. */
  list(auditor?: string): Disclosure[] {
    const since = auditor === undefined ? 0 : (this.#d.users.get(auditor)?.createdAt ?? Infinity);
    const rows = (
      auditor === undefined ? this.#s.all.all() : this.#s.forAuditor.all(auditor)
    ) as Record<string, unknown>[];
    return rows.filter((r) => (r.created_at as number) >= since).map((r) => this.#row(r));
  }

  /**
   * The disclosure package, for the auditor it was made to only; recorded before it is returned.
   * @throws LIAISON_ERR_NOT_FOUND (also for another auditor's disclosure: no probing of IDs)
   */
  open(id: string, user: string): DisclosurePackage {
    const r = this.#s.byId.get(id) as Record<string, unknown> | undefined;
    // A disclosure is to an account, not a name: an account removed and created again under the
    // same name is younger than the disclosure and does not inherit it.
    const account = this.#d.users.get(user);
    if (
      r === undefined ||
      r.auditor !== user ||
      account === null ||
      account.createdAt > (r.created_at as number)
    )
      throw new LiaisonError('LIAISON_ERR_NOT_FOUND', `no disclosure ${id}`, { field: 'id' });
    const d = this.#row(r);
    const sealed = this.#d.delivery.sealedMessage(d.messageId, d.sender);
    try {
      const me = this.#d.identity();
      const senderKey =
        d.sender === nodeIdToText(me.nodeId)
          ? me.signingKey.publicKey.bytes
          : this.#d.peerKey(d.sender);
      if (senderKey === null)
        throw new LiaisonError('LIAISON_ERR_NOT_FOUND', `no pinned key for ${d.sender}`);
      this.#d.store.transaction(() => {
        this.#d.audit.append('disclosure-consulted', this.#d.clock.now(), {
          user,
          sender: nodeIdFromText(d.sender),
          messageId: messageIdFromText(d.messageId),
        });
      });
      return {
        format: 'liaison-disclosure/1',
        ...d,
        envelope: Buffer.from(sealed.envelope).toString('base64'),
        contentKey: Buffer.from(sealed.contentKey).toString('base64'),
        senderIdentityKey: Buffer.from(senderKey).toString('base64'),
      };
    } finally {
      wipe(sealed.contentKey);
    }
  }
}
