/**
 * The demo: the main job of Plexus end to end on real files, each step verified. A
 * database volume is mirrored, split for a consistent backup (with access control on
 * the split image), backed up to a tape library across cartridges, restored and
 * compared, backed up again over two redundant streams with a copy device failing
 * half-way (chunked EXTENDED COPY switching to the other device), and the mirror
 * resynchronised by dirty bitmap.
 */
import fs from 'node:fs';
import path from 'node:path';
import { runBackup } from '../backup/backup.js';
import { createLibrary, removeLibrary } from '../backup/libraries.js';
import { restoreJob } from '../backup/restore.js';
import { Catalog } from '../catalog/catalog.js';
import { PlexusError } from '../errors.js';
import type { Home } from '../home/home.js';
import { Mirrors } from '../mirror/mirrors.js';
import type { ProgressCallback } from '../progress.js';
import { clearFaults, injectFault } from '../resources/faults.js';
import { Inventory } from '../resources/inventory.js';
import { Library } from '../tape/library.js';
import { sha256File } from '../util/hash.js';
import { formatBytes, formatRate, parseSize } from '../util/size.js';
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
  job: number;
  cartridges: string[];
  /** The chunked job that switched copy devices (null if the home has no two copy devices). */
  chunkedJob: number | null;
  initialCopyBytes: number;
  resyncBytes: number;
}

/** Names the demo owns in the home (replaced on every run). */
export const DEMO = { db: 'demo-db', mirror: 'demo-mirror', library: 'demo-lib', restored: 'demo-restored.img' } as const;
/** The demo's writes span up to about 300 KiB, so it needs at least this much room. */
const MIN_SIZE = 1 << 20;
const GRANULARITY = 64 * 1024;
const TAPE_BLOCK = 64 * 1024;

/** Removes what an earlier demo left, and nothing else. */
function clearEarlier(home: Home, mirrors: Mirrors, store: VolumeStore): void {
  if (mirrors.records.find(DEMO.mirror)) mirrors.delete(DEMO.db);
  for (const n of [DEMO.db, DEMO.mirror]) if (store.exists(n)) store.remove(n);
  if (Library.list(home).some((l) => l.name === DEMO.library)) {
    const catalog = Catalog.open(home);
    try {
      removeLibrary(home, catalog, DEMO.library, true);
    } finally {
      catalog.close();
    }
  }
  fs.rmSync(path.join(home.dir, DEMO.restored), { force: true });
}

/** Runs the demo in `home`, replacing an earlier demo's volumes and library. Throws if any check fails. */
export async function runDemo(home: Home, opts: DemoOptions = {}): Promise<DemoSummary> {
  const log = opts.log ?? (() => {});
  const size = parseSize(opts.size ?? '128M', 'size');
  if (size < MIN_SIZE || size % GRANULARITY !== 0) {
    throw new PlexusError('E_INVALID', `demo size must be a multiple of 64 KiB and at least ${formatBytes(MIN_SIZE)}, got ${opts.size}`);
  }
  const store = new VolumeStore(home);
  const mirrors = new Mirrors(home);
  let verified = 0;
  const check = (ok: boolean, what: string): void => {
    if (!ok) throw new PlexusError('E_CORRUPT', `demo check failed: ${what}`);
    verified++;
    log(`  ✓ ${what}`);
  };
  const expectCode = async (code: string, fn: () => unknown): Promise<boolean> => {
    try {
      await fn();
      return false;
    } catch (e) {
      return (e as PlexusError).code === code;
    }
  };
  const write = async (name: string, offset: number, length: number, byte: number): Promise<void> => {
    const io = await mirrors.openIo(name, { write: true });
    try {
      io.write(offset, Buffer.alloc(length, byte));
    } finally {
      io.close();
    }
  };
  clearEarlier(home, mirrors, store);

  log(`1. create volume ${DEMO.db} (${formatBytes(size)}) with seeded random data, and an empty ${DEMO.mirror}`);
  const db = store.create(DEMO.db, { size });
  await db.fill(0, size, { seed: 42 });
  store.create(DEMO.mirror, { size });

  log(`2. pair ${DEMO.db} → ${DEMO.mirror}: initial copy, then every write goes to both`);
  opts.onStage?.('initial copy');
  const paired = await mirrors.create(DEMO.db, DEMO.mirror, { granularity: GRANULARITY, onProgress: opts.onProgress });
  check(paired.state === 'PAIR', `the pair is in PAIR`);
  await write(DEMO.db, 4096, 8192, 0x11);
  check((await db.checksum()) === (await store.open(DEMO.mirror).checksum()), 'a write to the primary reached the mirror');

  log(`3. split: ${DEMO.mirror} freezes as a consistent image, read-only, for host backup-host only`);
  const split = await mirrors.split({ primary: DEMO.db }, { readOnly: true, allow: ['backup-host'] });
  const image = await store.open(DEMO.mirror).checksum();
  const writes = [
    { offset: 0, length: 4096 },
    { offset: Math.floor(size / 3) + 1000, length: 200_000 },
    { offset: size - 10, length: 10 },
  ];
  for (const [i, w] of writes.entries()) await write(DEMO.db, w.offset, w.length, 0xa0 + i);
  check((await store.open(DEMO.mirror).checksum()) === image, `the split image is unchanged by ${writes.length} later writes to ${DEMO.db}`);
  check(await expectCode('E_ACCESS', () => mirrors.openIo(DEMO.mirror, { host: 'intruder' })), 'another host is refused the split image (E_ACCESS)');
  check(await expectCode('E_READONLY', () => mirrors.openIo(DEMO.mirror, { host: 'backup-host', write: true })), 'the split image cannot be written (E_READONLY)');

  const cartridgeSize = Math.max(MIN_SIZE, Math.ceil(size / 3 / TAPE_BLOCK) * TAPE_BLOCK);
  log(`4. back the split image up to library ${DEMO.library} (cartridges of ${formatBytes(cartridgeSize)})`);
  const catalog = Catalog.open(home);
  try {
    createLibrary(home, catalog, DEMO.library, { slots: 8, drives: 2, cartridgeSize, blockSize: TAPE_BLOCK });
  } finally {
    catalog.close();
  }
  opts.onStage?.('backup');
  const job = await runBackup(home, DEMO.mirror, { library: DEMO.library, host: 'backup-host', onProgress: opts.onProgress });
  log(`   job ${job.job}: ${formatBytes(job.bytes)} in ${(job.elapsedMs / 1000).toFixed(2)} s (${formatRate(job.bytes / Math.max(job.elapsedMs / 1000, 1e-9))}) on ${job.cartridges.join(', ')}`);
  check(job.cartridges.length > 1, `the job spans ${job.cartridges.length} cartridges`);
  check(job.dataTime === split.splitAt, 'the catalog dates the backup at the split');

  log(`5. restore job ${job.job} to ${DEMO.restored}, verifying every block`);
  opts.onStage?.('restore');
  const restored = path.join(home.dir, DEMO.restored);
  await restoreJob(home, job.job, restored, { onProgress: opts.onProgress });
  check(sha256File(restored) === image, 'the restored file is byte-identical to the split image');

  const devices = (() => {
    const inv = Inventory.open(home);
    try {
      return inv
        .list()
        .filter((r) => r.kind === 'copy-device' && r.state === 'available')
        .map((r) => r.name);
    } finally {
      inv.close();
    }
  })();
  let chunkedJob: number | null = null;
  if (devices.length >= 2) {
    const failing = devices[0]!;
    log(`6. back it up again in chunked mode over two streams; copy device ${failing} breaks down half-way`);
    opts.onStage?.('chunked backup');
    injectFault(home, failing, { afterBytes: Math.floor(size / 2) });
    let chunked: Awaited<ReturnType<typeof runBackup>>;
    try {
      chunked = await runBackup(home, DEMO.mirror, { mode: 'chunked', library: DEMO.library, chunk: 4 * TAPE_BLOCK, host: 'backup-host', onProgress: opts.onProgress });
    } finally {
      clearFaults(home, failing);
    }
    chunkedJob = chunked.job;
    const [s0, s1] = chunked.streams;
    log(`   job ${chunked.job}: stream 0 (${s0!.mover}) stopped after ${formatBytes(s0!.bytes)} (${s0!.error?.split(':')[0] ?? 'no error'}); stream 1 (${s1!.mover}) wrote the rest`);
    check(s0!.status === 'failed' && s1!.status === 'done' && chunked.locations === 2, `the job switched from ${s0!.mover} to ${s1!.mover} and holds 2 location entries`);
    check(s0!.bytes > 0 && s0!.bytes + s1!.bytes === size, `nothing was written twice: ${formatBytes(s0!.bytes)} + ${formatBytes(s1!.bytes)}`);
    fs.rmSync(restored);
    await restoreJob(home, chunked.job, restored, { onProgress: opts.onProgress });
    check(sha256File(restored) === image, 'restored across both streams, it is byte-identical to the split image');
  } else {
    log('6. (skipped: the chunked backup needs two available copy devices; see plexus resources list)');
  }

  log(`7. resync the pair: only the regions written since the split are copied`);
  opts.onStage?.('resync');
  const [resync] = await mirrors.resync({ primary: DEMO.db }, { onProgress: opts.onProgress });
  const dirtyRegions = new Set(
    writes.flatMap((w) => {
      const out: number[] = [];
      for (let g = Math.floor(w.offset / GRANULARITY); g * GRANULARITY < w.offset + w.length; g++) out.push(g);
      return out;
    }),
  );
  check(resync!.bytesCopied === dirtyRegions.size * GRANULARITY, `copied ${formatBytes(resync!.bytesCopied)} of ${formatBytes(size)}: exactly the ${dirtyRegions.size} dirty regions`);
  check((await db.checksum()) === (await store.open(DEMO.mirror).checksum()), `${DEMO.mirror} matches ${DEMO.db} again, back in PAIR`);

  return { verified, job: job.job, cartridges: job.cartridges, chunkedJob, initialCopyBytes: size, resyncBytes: resync!.bytesCopied };
}
