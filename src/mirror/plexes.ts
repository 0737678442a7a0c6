/**
 * Multi-plex operations (JP 2000-353055): rotating backup plexes, restoring by
 * promoting a backup plex to be the live primary, and staging a split image onto a
 * third volume so the pair can resynchronise at once.
 */
import { callNative, PlexusError } from '../errors.js';
import { native } from '../native/binding.js';
import type { ProgressCallback } from '../progress.js';
import { type CopyReport, copyVolume } from '../volumes/copy.js';
import { fileStamp } from '../volumes/store.js';
import type { Mirrors, ResyncResult, SplitOptions, SplitReport } from './mirrors.js';

/** What a promotion did. */
export interface PromoteReport {
  primary: string;
  plex: string;
  elapsedMs: number;
  /** Bytes that now differ between the restored primary and each other plex. */
  differingBytes: number;
  suspended: string[];
}

/**
 * Makes a split backup plex the live primary in O(1): the two data files are exchanged
 * atomically, so the primary holds the backup image at once. Every other plex of the
 * primary is suspended (PSUS) with the regions that now differ marked dirty, ready for
 * a differential resync; the promoted pair keeps the old primary image on its
 * secondary, with the same differing regions.
 */
export function promote(mirrors: Mirrors, primary: string, plex: string): PromoteReport {
  const started = Date.now();
  const [target] = mirrors.select({ primary, plex });
  if (target?.state !== 'PSUS' || target.fillPending) {
    throw new PlexusError('E_STATE', `plex ${plex} of ${primary} must be a split (PSUS), fully filled backup plex to be promoted`);
  }
  const sizes = [primary, plex].map((v) => mirrors.store.open(v, { readOnly: true }).info().size);
  if (sizes[0] !== sizes[1]) {
    // Exchanging the files would change the primary's size under its users.
    throw new PlexusError('E_SIZE', `plex ${plex} (${sizes[1]} bytes) is larger than ${primary} (${sizes[0]} bytes): it cannot be promoted by exchange; use pair resync --reverse`);
  }
  const filling = mirrors.records.ofPrimary(primary).find((r) => r.secondary !== plex && r.fillPending);
  if (filling) {
    throw new PlexusError('E_STATE', `plex ${filling.secondary} of ${primary} is an instant split still reading from the primary; finish its fill first`);
  }
  // Holding the primary's pairs keeps every write out while the data moves.
  const set = mirrors.openSets([target]).get(primary)!;
  try {
    const diff = callNative(() => set.get(plex).mirror.dirtyRuns());
    const differingBytes = diff.reduce((a, d) => a + d.length, 0);
    const others = [...set.pairs.values()].filter((p) => p.record.secondary !== plex);
    // The other plexes are marked first: a crash before the exchange leaves only
    // extra dirty bits, which cost a little copying and nothing else.
    for (const p of others) {
      if (p.mirror.mode === 'duplex') {
        callNative(() => p.mirror.split());
        p.record.splitStamp = fileStamp(mirrors.store.file(p.record.secondary));
      }
      for (const d of diff) callNative(() => p.mirror.markDirty(d.offset, d.length));
      if (p.record.state !== 'PSUE') p.record.state = 'PSUS';
      p.record.splitAt ??= new Date().toISOString();
      p.record.operation = undefined;
      set.save(p.record);
    }
    // A plex whose secondary is unavailable must learn the difference too, or its
    // differential resync would miss it once the secondary is back.
    for (const p of set.absentPairs()) for (const d of diff) callNative(() => p.mirror.markDirty(d.offset, d.length));
    callNative(() => native.exchangeVolumeData(mirrors.store.file(primary), mirrors.store.file(plex)));
    return { primary, plex, elapsedMs: Date.now() - started, differingBytes, suspended: others.map((p) => p.record.secondary) };
  } finally {
    set.close();
  }
}

/** What a rotation did. */
export interface RotateReport {
  detached: string;
  rejoined: string | null;
  resync: ResyncResult[];
  split: SplitReport;
}

/**
 * Rotates backup plexes: of the plexes named, the oldest offline one (PSUS, earliest
 * split) rejoins the mirror by a differential resync first, so redundancy never drops,
 * then the one that was mirrored is split off as the newest backup generation.
 */
export async function rotate(mirrors: Mirrors, primary: string, plexes: string[], opts: SplitOptions & { onProgress?: ProgressCallback } = {}): Promise<RotateReport> {
  if (plexes.length < 2) throw new PlexusError('E_INVALID', 'rotation needs at least two plexes');
  const recs = plexes.map((p) => mirrors.select({ primary, plex: p })[0]!);
  const live = recs.filter((r) => r.state === 'PAIR');
  if (live.length !== 1) {
    throw new PlexusError('E_STATE', `exactly one of ${plexes.join(', ')} must be mirrored (PAIR) to rotate; found ${live.length}`);
  }
  const offline = recs.filter((r) => r.state === 'PSUS' || r.state === 'PSUE').sort((a, b) => (a.splitAt ?? '').localeCompare(b.splitAt ?? ''));
  const oldest = offline[0];
  const resync = oldest ? await mirrors.resync({ primary, plex: oldest.secondary }, { onProgress: opts.onProgress }) : [];
  const split = await mirrors.split({ primary, plex: live[0]!.secondary }, opts);
  return { detached: live[0]!.secondary, rejoined: oldest?.secondary ?? null, resync, split };
}

/** What staging did. */
export interface StageReport {
  split: SplitReport;
  copy: CopyReport;
  resync: ResyncResult[];
  /** How long the pair stayed split: from the split to the end of its resync. */
  splitWindowMs: number;
  stagingVolume: string;
}

/**
 * Staging: splits the pair, copies the split image to a third volume (created if
 * missing), and resynchronises the pair at once; backups then read the third volume
 * while the pair is mirrored again, which keeps the split window short.
 */
export async function stage(mirrors: Mirrors, primary: string, plex: string, to: string, opts: SplitOptions & { onProgress?: ProgressCallback; threads?: number } = {}): Promise<StageReport> {
  if (mirrors.records.all().some((r) => r.primary === to || r.secondary === to)) {
    throw new PlexusError('E_BUSY', `staging volume ${to} is in a pair`);
  }
  const split = await mirrors.split({ primary, plex }, opts);
  const started = Date.now();
  const src = mirrors.store.open(plex, { readOnly: true });
  const info = src.info();
  const dst = mirrors.store.exists(to) ? mirrors.store.open(to) : mirrors.store.create(to, { size: info.size, blockSize: info.blockSize });
  const copy = await copyVolume(src, dst, { threads: opts.threads, onProgress: opts.onProgress });
  // A frozen image as of the split: a backup of it is consistent while nothing writes it.
  mirrors.store.markStaged(to, plex, split.splitAt);
  const resync = await mirrors.resync({ primary, plex }, { threads: opts.threads, onProgress: opts.onProgress });
  return { split, copy, resync, splitWindowMs: Date.now() - started, stagingVolume: to };
}
