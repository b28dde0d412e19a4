/**
 * Measurement helpers shared by the benchmarks. The machines are shared and noisy, so a ratio is
 * never taken between two measurements minutes apart: `interleave` runs every contender for a
 * short slice in each round, takes the ratio within the round, and reports medians.
 */

/** Calls per second of `fn` over about `ms` milliseconds (after the caller's warm-up). */
export function rate(ms: number, fn: () => void): number {
  let n = 0;
  const start = performance.now();
  const until = start + ms;
  let now = start;
  do {
    for (let i = 0; i < 10; i++) fn();
    n += 10;
    now = performance.now();
  } while (now < until);
  return n / ((now - start) / 1000);
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export interface Interleaved {
  /** Median rate of each contender, calls per second. */
  readonly rates: Record<string, number>;
  /** Per-round rates, for the record. */
  readonly rounds: number;
}

/**
 * Runs each contender for `sliceMs` per round, `rounds` times, after a warm-up of every
 * contender; prints and returns median rates.
 */
export function interleave(
  contenders: Record<string, () => void>,
  rounds: number,
  sliceMs: number,
  onRound?: (rates: number[]) => void,
): Interleaved {
  const names = Object.keys(contenders);
  for (const name of names) rate(Math.min(300, sliceMs), contenders[name]!);
  const samples: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) {
    const round = names.map((name) => rate(sliceMs, contenders[name]!));
    round.forEach((v, i) => samples[names[i]!]!.push(v));
    onRound?.(round);
  }
  const rates: Record<string, number> = {};
  for (const name of names) {
    rates[name] = median(samples[name]!);
    console.log(
      `${name.padEnd(48)} ${rates[name]!.toFixed(0).padStart(10)} /s (median of ${rounds})`,
    );
  }
  return { rates, rounds };
}

/** `--seconds N` from argv (total budget, spread over the rounds), else `fallback`. */
export function parseSeconds(argv: readonly string[], fallback: number): number {
  const i = argv.indexOf('--seconds');
  if (i < 0) return fallback;
  const v = Number(argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0 || v > 600) {
    throw new Error('--seconds takes a number of seconds between 0 and 600');
  }
  return v;
}

/** `--name N`: a positive integer option, or `fallback` when absent. */
export function intOption(argv: readonly string[], name: string, fallback: number): number {
  const i = argv.indexOf(`--${name}`);
  const v = i < 0 ? fallback : Number(argv[i + 1]);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} takes a positive integer`);
  return v;
}
