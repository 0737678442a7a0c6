/** Assertions on the library's coded errors, shared by the error tests. */
import { expect } from 'vitest';
import { PlexusError } from '../../src/errors.js';

/** What `fn` threw (sync, or as a rejection); fails the test if it did not throw. */
export async function thrown(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected a failure');
}

/** `e` is a PlexusError with `code` whose message names each of `names`. */
export function expectCoded(e: unknown, code: string, ...names: string[]): void {
  expect(e).toBeInstanceOf(PlexusError);
  expect((e as PlexusError).code, (e as Error).message).toBe(code);
  for (const n of names) expect((e as Error).message).toContain(n);
}
