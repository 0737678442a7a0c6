/** runInBackground: a spawn that throws leaks no descriptor and is a PlexusError. */
import fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { scratchDir } from '../helpers/home.js';

const failSpawn = vi.hoisted(() => ({ on: false }));
vi.mock('node:child_process', async (original) => {
  const real = await original<typeof import('node:child_process')>();
  return {
    ...real,
    spawn: (...args: Parameters<typeof real.spawn>) => {
      if (failSpawn.on) throw Object.assign(new Error('spawn EAGAIN'), { code: 'EAGAIN', syscall: 'spawn' });
      return real.spawn(...args);
    },
  };
});

const { Home, Mirrors, PlexusError, runInBackground, VolumeStore } = await import('../../src/index.js');

let scratch: ReturnType<typeof scratchDir>;
beforeEach(() => {
  scratch = scratchDir();
});
afterEach(() => {
  failSpawn.on = false;
  scratch.cleanup();
});

const openFds = (): number => fs.readdirSync('/proc/self/fd').length;

describe('runInBackground', () => {
  it('closes the log descriptor when the spawn throws, and says so with a coded error', async () => {
    const home = Home.open(scratch.dir);
    const store = new VolumeStore(home);
    store.create('p', { size: 1 << 20 });
    store.create('s', { size: 1 << 20 });
    const mirrors = new Mirrors(home);
    await mirrors.create('p', 's');
    await mirrors.split({ primary: 'p' });
    failSpawn.on = true;
    const before = openFds();
    const errors: unknown[] = [];
    for (let i = 0; i < 5; i++) errors.push(await runInBackground(mirrors, { kind: 'resync', primary: 'p' }).catch((x: unknown) => x));
    expect(openFds()).toBe(before);
    for (const e of errors) {
      expect(e).toBeInstanceOf(PlexusError);
      expect((e as InstanceType<typeof PlexusError>).code).toBe('E_IO');
    }
  });
});
