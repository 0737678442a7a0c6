import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { copyToVolume, Home, Mirrors, VolumeStore } from '../../src/index.js';
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

async function volumes(size: number, ...names: string[]): Promise<void> {
  for (const n of names) store.create(n, { size });
  await store.open(names[0]!).fill(0, size, { seed: 11 });
}

describe('pairs', () => {
  it('create copies the primary, reaches PAIR, and the state survives reopening the home', async () => {
    await volumes(16 * MiB, 'p', 's');
    const events: number[] = [];
    const info = await mirrors.create('p', 's', { granularity: 64 * 1024, onProgress: (e) => events.push(e.done) });
    expect(info.state).toBe('PAIR');
    expect(info.operation).toBeNull();
    expect(await store.open('s').checksum()).toBe(await store.open('p').checksum());
    expect(events.at(-1)).toBe(16 * MiB);
    const again = new Mirrors(Home.open(scratch.dir)).display({ primary: 'p' });
    expect(again.map((p) => [p.secondary, p.state, p.dirtyBytes])).toEqual([['s', 'PAIR', 0]]);
  });

  it('a copy of an instant split whose fill is pending is refused: its data file does not hold the image yet', async () => {
    await volumes(2 * MiB, 'p', 's');
    const image = await store.open('p').checksum();
    await mirrors.create('p', 's', { instant: true, deferCopy: true });
    const io = await mirrors.openIo('p', { write: true });
    try {
      io.write(0, Buffer.alloc(4096, 3));
    } finally {
      io.close();
    }
    const copy = copyToVolume(mirrors, 's', 'c');
    await expect(copy).rejects.toMatchObject({ code: 'E_STATE' });
    await expect(copy).rejects.toThrow(/p → s.*plexus pair fill p/);
    expect(store.exists('c')).toBe(false);
    await mirrors.fill({ primary: 'p' });
    await copyToVolume(mirrors, 's', 'c');
    expect(await store.open('c').checksum()).toBe(image);
  });

  it('a copy from a secondary honours its access list in every state', async () => {
    await volumes(2 * MiB, 'p', 's');
    await mirrors.create('p', 's', { allow: ['backup1'] });
    await expect(copyToVolume(mirrors, 's', 'c', { host: 'backup1' })).rejects.toMatchObject({ code: 'E_ACCESS' });
    await mirrors.split({ primary: 'p' });
    await expect(copyToVolume(mirrors, 's', 'c', { host: 'intruder' })).rejects.toMatchObject({ code: 'E_ACCESS', message: expect.stringMatching(/intruder/) });
    expect(store.exists('c')).toBe(false);
    await copyToVolume(mirrors, 's', 'c', { host: 'backup1' });
    expect(await store.open('c').checksum()).toBe(await store.open('p').checksum());
  });

  it('split freezes the secondary; resync copies exactly the regions written on either side', async () => {
    await volumes(16 * MiB, 'p', 's');
    await mirrors.create('p', 's');
    const frozen = await store.open('s').checksum();
    const split = await mirrors.split({ primary: 'p' });
    expect(split.pairs).toEqual(['p → s']);
    expect(mirrors.display({ primary: 'p' })[0]!.state).toBe('PSUS');
    const G = 64 * 1024;
    const io = await mirrors.openIo('p', { write: true });
    io.write(0, Buffer.alloc(10, 1)); // granule 0
    io.write(3 * G - 1, Buffer.alloc(2, 2)); // granules 2 and 3
    io.close();
    const sio = await mirrors.openIo('s', { write: true });
    sio.write(3 * G, Buffer.alloc(5, 3)); // granule 3 again: union
    sio.write(9 * G, Buffer.alloc(5, 4)); // granule 9
    sio.close();
    expect(await store.open('s').checksum()).not.toBe(frozen);
    expect(mirrors.display({ primary: 'p' })[0]!.dirtyBytes).toBe(4 * G);
    const [r] = await mirrors.resync({ primary: 'p' });
    expect(r!.bytesCopied).toBe(4 * G);
    expect(await store.open('s').checksum()).toBe(await store.open('p').checksum());
    expect(mirrors.display({ primary: 'p' })[0]!.state).toBe('PAIR');
  });

  it('refuses bad pairings with codes', async () => {
    await volumes(MiB, 'p', 's', 't');
    store.create('big', { size: 2 * MiB });
    // A larger secondary is accepted (test/cli/pair/larger-secondary.test.ts); a smaller one is not.
    await expect(mirrors.create('big', 'p')).rejects.toMatchObject({ code: 'E_SIZE' });
    await expect(mirrors.create('p', 'p')).rejects.toMatchObject({ code: 'E_INVALID' });
    await expect(mirrors.create('p', 'nope')).rejects.toMatchObject({ code: 'E_NOENT' });
    await expect(mirrors.create('p', 's', { granularity: 3000 })).rejects.toMatchObject({ code: 'E_INVALID' });
    await mirrors.create('p', 's');
    await expect(mirrors.create('t', 's')).rejects.toMatchObject({ code: 'E_EXISTS' });
    await expect(mirrors.resync({ primary: 'p' })).rejects.toMatchObject({ code: 'E_STATE' });
    await expect(mirrors.split({ primary: 'nope' })).rejects.toMatchObject({ code: 'E_NOENT' });
  });
});
