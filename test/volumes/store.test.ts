import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DirtyBitmap, Home, PlexusError, VolumeStore } from '../../src/index.js';
import { scratchDir } from '../helpers/home.js';

let scratch: ReturnType<typeof scratchDir>;
let store: VolumeStore;

beforeEach(() => {
  scratch = scratchDir();
  store = new VolumeStore(Home.open(scratch.dir));
});
afterEach(() => scratch.cleanup());

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(PlexusError);
    return (e as PlexusError).code;
  }
  return undefined;
}

describe('VolumeStore', () => {
  it('creates, lists, opens by name and by identity, and removes volumes', () => {
    const a = store.create('alpha', { size: 1 << 20 });
    store.create('beta', { size: 64 << 10, blockSize: 512 });
    expect(store.names()).toEqual(['alpha', 'beta']);
    const list = store.list();
    expect(list.map((v) => [v.name, v.size, v.blockSize])).toEqual([
      ['alpha', 1 << 20, 4096],
      ['beta', 64 << 10, 512],
    ]);
    expect(list[0]!.id).toMatch(/^6[0-9a-f]{31}$/);
    expect(store.findById(a.info().id.toUpperCase())?.name).toBe('alpha');
    expect(store.findById('0'.repeat(32))).toBeUndefined();
    DirtyBitmap.create(store.bitmapFile('alpha'), 1 << 20, { durable: true }).mark(0, 1);
    store.remove('alpha');
    expect(store.names()).toEqual(['beta']);
    expect(fs.existsSync(store.bitmapFile('alpha'))).toBe(false);
    expect(fs.existsSync(`${store.bitmapFile('alpha')}.log`)).toBe(false);
    expect(fs.existsSync(path.join(scratch.dir, 'volumes', 'alpha.img'))).toBe(false);
  });

  it('refuses bad names, duplicates, bad geometry and unknown volumes with stable codes', () => {
    store.create('v', { size: 8192 });
    expect(codeOf(() => store.create('v', { size: 8192 }))).toBe('E_EXISTS');
    expect(codeOf(() => store.create('../evil', { size: 8192 }))).toBe('E_INVALID');
    expect(codeOf(() => store.create('w', { size: 8192, blockSize: 3000 }))).toBe('E_INVALID');
    expect(codeOf(() => store.create('w', { size: 5000 }))).toBe('E_SIZE');
    expect(codeOf(() => store.open('nope'))).toBe('E_NOENT');
    expect(codeOf(() => store.remove('nope'))).toBe('E_NOENT');
    expect(store.names()).toEqual(['v']);
  });

  it('reads back what was written, at unaligned offsets, with bounds checked', async () => {
    const v = store.create('io', { size: 1 << 20 });
    const data = Buffer.from('the quick brown fox');
    v.write(4095, data);
    expect(v.read(4095, data.length).equals(data)).toBe(true);
    expect(codeOf(() => v.read((1 << 20) - 5, 10))).toBe('E_RANGE');
    expect(codeOf(() => v.write(-1, data))).toBe('E_INVALID');
    try {
      v.write(1 << 20, data);
      expect.unreachable();
    } catch (e) {
      expect((e as PlexusError).code).toBe('E_RANGE');
      expect((e as PlexusError).message).toContain('io');
      expect((e as PlexusError).message).toContain(String(1 << 20));
    }
    const ro = store.open('io', { readOnly: true });
    expect(codeOf(() => ro.write(0, data))).toBe('E_READONLY');
  });

  it('computes SHA-256 checksums that match an independent hash of the file', async () => {
    const v = store.create('sum', { size: 256 << 10 });
    await v.fill(0, 256 << 10, { seed: 99 });
    await v.fill(1000, 3000, { pattern: 0x5a });
    v.flush();
    const file = fs.readFileSync(store.file('sum'));
    expect(await v.checksum()).toBe(createHash('sha256').update(file).digest('hex'));
    expect(await v.checksum(1000, 3000)).toBe(createHash('sha256').update(Buffer.alloc(3000, 0x5a)).digest('hex'));
    await expect(v.checksum(0, (256 << 10) + 1)).rejects.toMatchObject({ code: 'E_RANGE' });
    await expect(v.fill(0, 10, { pattern: 256 })).rejects.toMatchObject({ code: 'E_INVALID' });
  });
});
