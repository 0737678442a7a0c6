import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { copyVolume, Home, type ProgressEvent, VolumeStore } from '../../src/index.js';
import { scratchDir } from '../helpers/home.js';

let scratch: ReturnType<typeof scratchDir>;
let store: VolumeStore;

beforeEach(() => {
  scratch = scratchDir();
  store = new VolumeStore(Home.open(scratch.dir));
});
afterEach(() => scratch.cleanup());

describe('copyVolume', () => {
  it('copies a whole volume byte for byte and reports progress up to the total', async () => {
    const size = 32 << 20;
    const src = store.create('src', { size });
    const dst = store.create('dst', { size });
    await src.fill(0, size, { seed: 5 });
    const events: ProgressEvent[] = [];
    const r = await copyVolume(src, dst, { threads: 2, chunkSize: 1 << 20, onProgress: (e) => events.push(e) });
    expect(r.bytesCopied).toBe(size);
    expect(r.chunks).toBe(32);
    expect(r.threads).toBe(2);
    expect(r.elapsedMs).toBeGreaterThan(0);
    expect(await dst.checksum()).toBe(await src.checksum());
    const last = events.at(-1)!;
    expect(last).toEqual({ operation: 'copy', done: size, total: size });
    for (let i = 1; i < events.length; i++) expect(events[i]!.done).toBeGreaterThanOrEqual(events[i - 1]!.done);
  });

  it('copies only the given ranges', async () => {
    const src = store.create('src', { size: 1 << 20 });
    const dst = store.create('dst', { size: 1 << 20 });
    await src.fill(0, 1 << 20, { pattern: 0xee });
    const r = await copyVolume(src, dst, {
      ranges: [
        { offset: 100, length: 50 },
        { offset: 70_000, length: 4096 },
      ],
    });
    expect(r.bytesCopied).toBe(50 + 4096);
    expect(dst.read(99, 52)).toEqual(Buffer.concat([Buffer.from([0]), Buffer.alloc(50, 0xee), Buffer.from([0])]));
    expect(dst.read(70_000, 4096).every((b) => b === 0xee)).toBe(true);
    expect(dst.read(0, 99).every((b) => b === 0)).toBe(true);
  });

  it('rejects a size mismatch, a copy onto itself and ranges past the end with codes', async () => {
    const a = store.create('a', { size: 1 << 20 });
    const b = store.create('b', { size: 2 << 20 });
    await expect(copyVolume(a, b)).rejects.toMatchObject({ code: 'E_SIZE' });
    await expect(copyVolume(a, store.open('a'))).rejects.toMatchObject({ code: 'E_BUSY' });
    await expect(copyVolume(a, b, { ranges: [{ offset: (1 << 20) - 1, length: 2 }] })).rejects.toMatchObject({ code: 'E_RANGE' });
    await expect(copyVolume(a, b, { threads: 0 })).rejects.toMatchObject({ code: 'E_INVALID' });
  });

  it('is cancelled by an AbortSignal without blocking the event loop', async () => {
    const size = 512 << 20;
    const src = store.create('src', { size });
    // Data, not holes: a copy skips holes, and this one must still be running at the abort.
    await src.fill(0, size, { pattern: 0x3c });
    const dst = store.create('dst', { size });
    const ac = new AbortController();
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const events: ProgressEvent[] = [];
    const p = copyVolume(src, dst, { threads: 1, chunkSize: 1 << 20, signal: ac.signal, onProgress: (e) => events.push(e) });
    // 512 MiB takes well over 5 ms even on a fast machine, so the abort lands mid-copy.
    setTimeout(() => ac.abort(), 5);
    await expect(p).rejects.toMatchObject({ code: 'E_CANCELLED' });
    expect(events.every((e) => e.done < size)).toBe(true);
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(0);
    const pre = new AbortController();
    pre.abort();
    await expect(copyVolume(src, dst, { signal: pre.signal })).rejects.toMatchObject({ code: 'E_CANCELLED' });
  });
});
