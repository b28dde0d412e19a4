/**
 * The node's event stream (GET /v1/events, docs/api.md): what happened, in order, with a
 * persistent ID so a client that reconnects resumes exactly where it stopped (SSE Last-Event-ID).
 *
 * Events are rows written in the transaction of the change they report; listeners are woken
 * after the commit and read the rows themselves, so an event is never announced for a change
 * that rolled back, and a slow listener never holds the writer.
 */
import type Database from 'better-sqlite3';
import type { Clock } from './clock.ts';

export const EVENT_TYPES = [
  'message.received',
  'message.status',
  'message.gap',
  'peer.up',
  'peer.down',
  'audit.checkpoint',
  'audit.cosigned',
  'audit.alert',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** Events kept for resuming; older ones are pruned (a client further behind re-reads the inbox). */
export const EVENT_RETENTION = 100_000;
/** Events handed to one listener per read. */
export const EVENT_READ_BATCH = 500;

export interface StoredEvent {
  readonly id: number;
  readonly at: number;
  readonly type: EventType;
  readonly data: Record<string, unknown>;
}

/** A stored event with its data as the JSON text stored (what an event stream sends on). */
export interface StoredEventText {
  readonly id: number;
  readonly at: number;
  readonly type: EventType;
  /** A JSON object, as JSON.stringify wrote it; it has no member `at`. */
  readonly data: string;
}

export class EventLog {
  readonly #insert: Database.Statement;
  readonly #after: Database.Statement;
  readonly #last: Database.Statement;
  readonly #first: Database.Statement;
  readonly #prune: Database.Statement;
  readonly #clock: Clock;
  readonly #listeners = new Set<() => void>();
  #wakeScheduled = false;
  #sincePrune = 0;

  constructor(db: Database.Database, clock: Clock) {
    this.#clock = clock;
    this.#insert = db.prepare('INSERT INTO events (at, type, data) VALUES (?, ?, ?)');
    this.#after = db
      .prepare('SELECT id, at, type, data FROM events WHERE id > ? ORDER BY id LIMIT ?')
      .safeIntegers(false);
    this.#last = db.prepare('SELECT COALESCE(MAX(id), 0) AS id FROM events').safeIntegers(false);
    this.#first = db.prepare('SELECT MIN(id) AS id FROM events').safeIntegers(false);
    this.#prune = db.prepare('DELETE FROM events WHERE id <= ?');
  }

  /** Records an event (inside the caller's transaction, if any) and wakes listeners afterwards. */
  record(type: EventType, data: Record<string, unknown>): void {
    // Streams add the time as member `at` (afterText): the data must not have one of its own.
    if ('at' in data) throw new Error('event data must not have a member named at');
    this.#insert.run(this.#clock.now(), type, JSON.stringify(data));
    this.#sincePrune += 1;
    // Woken on the next turn: after the caller's synchronous transaction has committed.
    if (!this.#wakeScheduled) {
      this.#wakeScheduled = true;
      setImmediate(() => {
        this.#wakeScheduled = false;
        for (const l of this.#listeners) l();
      });
    }
  }

  after(id: number, limit = EVENT_READ_BATCH): StoredEvent[] {
    return this.afterText(id, limit).map((e) => ({
      ...e,
      data: JSON.parse(e.data) as Record<string, unknown>,
    }));
  }

  /** Like `after`, with the data left as stored: an event stream need not parse it. */
  afterText(id: number, limit = EVENT_READ_BATCH): StoredEventText[] {
    return this.#after.all(id, limit) as StoredEventText[];
  }

  /** The oldest retained event's ID, null when there is none. */
  firstId(): number | null {
    return (this.#first.get() as { id: number | null }).id;
  }

  lastId(): number {
    return (this.#last.get() as { id: number }).id;
  }

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Drops events beyond the retention window; cheap enough to call on a timer. */
  prune(): void {
    if (this.#sincePrune === 0) return;
    this.#sincePrune = 0;
    this.#prune.run(this.lastId() - EVENT_RETENTION);
  }
}
