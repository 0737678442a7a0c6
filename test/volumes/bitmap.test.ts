import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DirtyBitmap } from '../../src/index.js';
import { scratchDir } from '../helpers/home.js';

let scratch: ReturnType<typeof scratchDir>;
beforeEach(() => (scratch = scratchDir()));
afterEach(() => scratch.cleanup());

const KiB = 1024;

describe('DirtyBitmap', () => {
  it('marks granules touched by unaligned writes and coalesces runs', () => {
    const bm = DirtyBitmap.create(path.join(scratch.dir, 'a.bitmap'), 1000 * KiB, { granularity: 64 * KiB });
    expect(bm.bits).toBe(16);
    expect(bm.mark(1, 1)).toBe(1);
    expect(bm.mark(64 * KiB - 1, 2)).toBe(1); // bit 0 already set, bit 1 new
    expect(bm.mark(999 * KiB, KiB)).toBe(1); // last, partial granule
    expect(bm.count()).toBe(3);
    expect(bm.runs()).toEqual([
      { offset: 0, length: 128 * KiB },
      { offset: 960 * KiB, length: 40 * KiB },
    ]);
    expect(bm.dirtyBytes()).toBe(128 * KiB + 40 * KiB);
    expect(bm.isDirty(200 * KiB, 10)).toBe(false);
    expect(() => bm.mark(1000 * KiB, 1)).toThrow(expect.objectContaining({ code: 'E_RANGE' }));
    bm.clearRange(0, 64 * KiB);
    expect(bm.count()).toBe(2);
    bm.clear();
    expect(bm.runs()).toEqual([]);
  });

  it('merges bitmaps of the same geometry and refuses others', () => {
    const a = DirtyBitmap.create(path.join(scratch.dir, 'a.bitmap'), 1 << 20, { granularity: 4096 });
    const b = DirtyBitmap.create(path.join(scratch.dir, 'b.bitmap'), 1 << 20, { granularity: 4096 });
    const c = DirtyBitmap.create(path.join(scratch.dir, 'c.bitmap'), 1 << 20, { granularity: 8192 });
    a.mark(0, 4096);
    b.mark(8192, 4096);
    a.merge(b);
    expect(a.runs()).toEqual([
      { offset: 0, length: 4096 },
      { offset: 8192, length: 4096 },
    ]);
    expect(() => a.merge(c)).toThrow(expect.objectContaining({ code: 'E_SIZE' }));
    expect(() => DirtyBitmap.create(path.join(scratch.dir, 'd'), 1 << 20, { granularity: 3000 })).toThrow(expect.objectContaining({ code: 'E_INVALID' }));
  });

  it('survives a reopen, and a torn tail of its write-intent log loses only the torn record', () => {
    const file = path.join(scratch.dir, 'p.bitmap');
    const bm = DirtyBitmap.create(file, 64 << 20, { durable: true });
    bm.mark(0, 1);
    bm.mark(10 << 20, 1);
    const again = DirtyBitmap.open(file, { durable: true });
    expect(again.runs().map((r) => r.offset)).toEqual([0, 10 << 20]);
    // A crash in the middle of appending the next record leaves a partial record.
    fs.appendFileSync(`${file}.log`, Buffer.from([1, 2, 3, 4, 5, 6, 7]));
    const recovered = DirtyBitmap.open(file, { durable: true });
    expect(recovered.count()).toBe(2);
    recovered.mark(20 << 20, 1);
    expect(DirtyBitmap.open(file).count()).toBe(3);
  });

  it('reports a corrupt snapshot and a missing file with codes', () => {
    const file = path.join(scratch.dir, 'x.bitmap');
    DirtyBitmap.create(file, 1 << 20).flush();
    const bytes = fs.readFileSync(file);
    bytes[30] = bytes[30]! ^ 0xff;
    fs.writeFileSync(file, bytes);
    expect(() => DirtyBitmap.open(file)).toThrow(expect.objectContaining({ code: 'E_CORRUPT' }));
    expect(() => DirtyBitmap.open(path.join(scratch.dir, 'none.bitmap'))).toThrow(expect.objectContaining({ code: 'E_NOENT' }));
  });
});
