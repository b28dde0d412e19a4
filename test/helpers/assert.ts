/** Assertion helpers shared by the tests. */
import { isLiaisonError } from '../../protocol/index.ts';
import type { ErrorCode } from '../../protocol/index.ts';

/** The part of a tap Test these helpers use. */
export interface Asserts {
  equal(found: unknown, wanted: unknown, message: string): unknown;
  fail(message: string): unknown;
}

/** Asserts that `fn` throws a LiaisonError with exactly `code`; anything else fails. */
export function rejects(t: Asserts, fn: () => unknown, code: ErrorCode, label: string): void {
  try {
    fn();
    t.fail(`${label}: accepted, expected ${code}`);
  } catch (err) {
    if (!isLiaisonError(err)) {
      t.fail(`${label}: threw a non-Liaison error: ${String(err)}`);
      return;
    }
    t.equal(err.code, code, label);
  }
}

/** The asynchronous form of `rejects`: `p` must reject with a LiaisonError of exactly `code`. */
export async function rejectsAsync(
  t: Asserts,
  p: Promise<unknown>,
  code: ErrorCode,
  label: string,
): Promise<void> {
  try {
    await p;
    t.fail(`${label}: accepted, expected ${code}`);
  } catch (err) {
    if (!isLiaisonError(err)) {
      t.fail(`${label}: threw a non-Liaison error: ${String(err)}`);
      return;
    }
    t.equal(err.code, code, label);
  }
}
