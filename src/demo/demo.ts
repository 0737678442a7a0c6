/** The demo: everything Plexus does so far, on real volume files, each step verified. */
import { PlexusError } from '../errors.js';
import type { Home } from '../home/home.js';
import type { ProgressCallback } from '../progress.js';
import { formatBytes, formatRate, parseSize } from '../util/size.js';
import { DirtyBitmap } from '../volumes/bitmap.js';
import { copyVolume } from '../volumes/copy.js';
import { VolumeStore } from '../volumes/store.js';

/** Hooks the demo reports through. */
export interface DemoOptions {
  size?: string;
  log?: (line: string) => void;
  onStage?: (name: string) => void;
  onProgress?: ProgressCallback;
}

/** What the demo proved. */
export interface DemoSummary {
  verified: number;
  fullCopyBytes: number;
  differentialBytes: number;
}

const SRC = 'demo-src';
/** The demo's writes span up to about 300 KiB, so it needs at least this much room. */
const MIN_SIZE = 1 << 20;
const DST = 'demo-dst';

/** Runs the demo in `home`, replacing earlier demo volumes. Throws if any check fails. */
export async function runDemo(home: Home, opts: DemoOptions = {}): Promise<DemoSummary> {
  const log = opts.log ?? (() => {});
  const size = parseSize(opts.size ?? '128M', 'size');
  if (size < MIN_SIZE || size % 4096 !== 0) {
    throw new PlexusError('E_INVALID', `demo size must be a multiple of 4 KiB and at least ${formatBytes(MIN_SIZE)}, got ${opts.size}`);
  }
  const store = new VolumeStore(home);
  let verified = 0;
  const check = (ok: boolean, what: string): void => {
    if (!ok) throw new PlexusError('E_CORRUPT', `demo check failed: ${what}`);
    verified++;
    log(`  ✓ ${what}`);
  };

  for (const n of [SRC, DST]) if (store.exists(n)) store.remove(n);
  log(`1. create volume ${SRC} (${formatBytes(size)}) and fill it with seeded random data`);
  const src = store.create(SRC, { size });
  await src.fill(0, size, { seed: 42 });
  const srcSum = await src.checksum();
  log(`   sha256 ${srcSum}`);

  log(`2. full block copy ${SRC} → ${DST}`);
  const dst = store.create(DST, { size });
  opts.onStage?.('full copy');
  const full = await copyVolume(src, dst, { onProgress: opts.onProgress });
  log(`   copied ${formatBytes(full.bytesCopied)} in ${(full.elapsedMs / 1000).toFixed(2)} s (${formatRate(full.rate)})`);
  check((await dst.checksum()) === srcSum, `${DST} is byte-identical to ${SRC}`);
  check(src.info().id !== dst.info().id, 'each volume has its own unique identifier');

  log(`3. track writes to ${SRC} in a durable dirty bitmap (64 KiB granularity)`);
  const bitmap = DirtyBitmap.create(store.bitmapFile(SRC), size, { durable: true });
  const writes = [
    { offset: 0, length: 4096 },
    { offset: Math.floor(size / 3) + 1000, length: 200_000 },
    { offset: size - 10, length: 10 },
  ];
  for (const [i, w] of writes.entries()) {
    // The bit is durable before the write it covers: write-intent ordering.
    bitmap.mark(w.offset, w.length);
    src.write(w.offset, Buffer.alloc(w.length, 0xa0 + i));
  }
  const runs = bitmap.runs();
  log(`   ${runs.length} dirty runs, ${formatBytes(bitmap.dirtyBytes())} to resync`);
  check((await dst.checksum()) !== (await src.checksum()), 'the copy no longer matches after the writes');

  log(`4. differential copy of the dirty runs only`);
  opts.onStage?.('resync');
  const diff = await copyVolume(src, dst, { ranges: runs, onProgress: opts.onProgress });
  bitmap.clear();
  check(diff.bytesCopied === runs.reduce((a, r) => a + r.length, 0), `copied exactly the dirty bytes (${formatBytes(diff.bytesCopied)} of ${formatBytes(size)})`);
  check((await dst.checksum()) === (await src.checksum()), `${DST} matches ${SRC} again`);
  check(bitmap.count() === 0, 'the bitmap is clean after the resync');

  return { verified, fullCopyBytes: full.bytesCopied, differentialBytes: diff.bytesCopied };
}
