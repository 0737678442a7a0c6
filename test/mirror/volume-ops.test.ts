/** Library volume operations that must leave nothing behind when they fail. */
import fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { copyToVolume, Home, Mirrors, PlexusError, VolumeStore } from '../../src/index.js';
import { scratchDir } from '../helpers/home.js';

let scratch: ReturnType<typeof scratchDir>;
let mirrors: Mirrors;
let store: VolumeStore;
const MiB = 1 << 20;

beforeEach(() => {
  scratch = scratchDir();
  const home = Home.open(scratch.dir);
  mirrors = new Mirrors(home);
  store = new VolumeStore(home);
});
afterEach(() => scratch.cleanup());

describe('copyToVolume', () => {
  it('a cancelled copy removes the destination it created, and keeps one that existed', async () => {
    store.create('a', { size: 4 * MiB });
    await store.open('a').fill(0, 4 * MiB, { seed: 3 });
    const e = await copyToVolume(mirrors, 'a', 'b', { signal: AbortSignal.abort() }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(PlexusError);
    expect((e as PlexusError).code).toBe('E_CANCELLED');
    expect(store.exists('b')).toBe(false);
    expect(fs.existsSync(store.file('b'))).toBe(false);
    // The name is free again: a later copy creates it.
    const r = await copyToVolume(mirrors, 'a', 'b');
    expect(r.created).toBe(true);
    expect(await store.open('b').checksum()).toBe(await store.open('a').checksum());

    // A destination that was there before is the user's: a failed copy onto it stays.
    const e2 = await copyToVolume(mirrors, 'a', 'b', { signal: AbortSignal.abort() }).catch((x: unknown) => x);
    expect((e2 as PlexusError).code).toBe('E_CANCELLED');
    expect(store.exists('b')).toBe(true);
  });
});
