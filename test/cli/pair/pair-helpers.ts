/** Helpers shared by the `plexus pair` CLI tests (not a test file itself). */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { expect } from 'vitest';
import { Home, VolumeStore } from '../../../src/index.js';
import type { PairInfo } from '../../../src/mirror/mirrors.js';
import { plexus } from '../../helpers/home.js';
import { KiB, MiB, ok, volumeFiles } from '../cli-helpers.js';

/** The bitmap granularity the tests pair with (`--granularity 64K`). */
export const G = 64 * KiB;

/**
 * Creates volumes of `sizeMiB` MiB, the first filled with seeded random bytes. Fixtures
 * are made in-process (the volume commands have their own CLI tests): each spawned CLI
 * costs about 0.2 s, and the pair commands under test need every one of those.
 */
export async function volumes(home: string, sizeMiB: number, ...names: string[]): Promise<void> {
  const store = new VolumeStore(Home.open(home));
  const size = sizeMiB * MiB;
  for (const n of names) store.create(n, { size });
  const first = store.open(names[0]!);
  await first.fill(0, size, { seed: 7 });
  first.flush();
}

/** SHA-256 of a volume's data file: what `plexus volume checksum` prints for a plain volume. */
export function sum(home: string, name: string): string {
  return crypto
    .createHash('sha256')
    .update(fs.readFileSync(volumeFiles(home, name).img))
    .digest('hex');
}

/** Writes `length` bytes of one byte value at `offset` through the CLI (so pairs see it). */
export function put(home: string, volume: string, offset: number, length: number, byte: number, ...global: string[]): void {
  ok(home, ...global, 'volume', 'write', volume, '--offset', String(offset), '--pattern', String(byte), '--length', String(length));
}

/** Parses the JSON a command printed. */
export function json<T>(stdout: string): T {
  return JSON.parse(stdout) as T;
}

/** `pair display --json` for a selector (none: every pair). */
export function display(home: string, ...sel: string[]): PairInfo[] {
  return json<PairInfo[]>(ok(home, 'pair', 'display', ...sel, '--json').stdout);
}

/** State of each pair of the selector, keyed by secondary. */
export function states(home: string, ...sel: string[]): Record<string, string> {
  return Object.fromEntries(display(home, ...sel).map((p) => [p.secondary, p.state]));
}

/** `pair wait` for a state and insists it was reached. */
export function waitFor(home: string, primary: string, state: string, timeoutSeconds = 30): void {
  const r = plexus(home, 'pair', 'wait', primary, '--state', state, '--timeout', String(timeoutSeconds));
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toBe(`${state}\n`);
}

/** Whether process `pid` is still running (a zombie is not: detached children are
 * orphans, and not every init reaps them promptly). */
export function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

/** Polls `check` every 50 ms until it holds or `ms` pass; returns whether it held. */
export async function until(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}
