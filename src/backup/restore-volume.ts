/**
 * Restore into a volume (JP 2002-041345, Fig. 3 and [0043]): a job's segments are read
 * into a volume through its write path, so a primary's pairs never silently differ
 * from it. Two ways for a mirrored primary, the operator's choice:
 *
 * - `duplex` (Fig. 3 step 507): every restored byte is written to the primary and
 *   duplexed to each mirrored plex (a split plex records it for its resync);
 * - `resync` ([0043], the second embodiment): the pairs are split first, the restore
 *   writes the primary alone, then each pair split for it is resynced (step 511).
 *
 * The volume's users are stopped first (step 503): with the agent, a volume with NBD
 * clients is refused unless `force`, and then its export is paused for the restore.
 */
import { callNative, guarded, PlexusError } from '../errors.js';
import type { Home } from '../home/home.js';
import { Mirrors } from '../mirror/mirrors.js';
import { PlexSet } from '../mirror/plexset.js';
import { isDuplexing } from '../mirror/states.js';
import { type NativePlex, native } from '../native/binding.js';
import { planHomeRestore, type RestoreOptions, type RestorePlan, readSegments } from './restore.js';

/** How a mirrored primary's pairs get the restored bytes. */
export type RestoreMirrorMode = 'duplex' | 'resync';

/** What the agent tells a restore about the volume's users. */
export interface VolumeUsers {
  /** NBD clients connected to the volume's export now. */
  clients(volume: string): number;
  /** Cuts them and stops serving the volume until the returned function is called. */
  pause(volume: string): () => void;
}

/** Options of a restore into a volume. */
export interface VolumeRestoreOptions extends RestoreOptions {
  /** For a primary: `duplex` (default) or `resync`. */
  mirror?: RestoreMirrorMode;
  /** The volume's users (the agent's exports); none in process. */
  users?: VolumeUsers;
}

/** What a restore into a volume did. */
export interface VolumeRestoreReport {
  job: number;
  target: string;
  volume: string;
  offset: number;
  bytes: number;
  segments: number;
  loaded: string[];
  copy: number;
  mirror: RestoreMirrorMode | null;
  /** Pairs whose secondaries got every restored byte while it was written (duplex). */
  duplexed: string[];
  /** Pairs split for the restore and resynced after it (resync), with the bytes copied. */
  resynced: Array<{ pair: string; bytes: number }>;
  /** Pairs that were split before and stay split, with the restored range dirty. */
  tracked: string[];
  /** NBD clients cut while the export was paused. */
  clientsCut: number;
  elapsedMs: number;
}

/** Restores job `jobId` (or a byte range of it, at the same offsets) into volume `volume`. */
export function restoreToVolume(home: Home, jobId: number, volume: string, opts: VolumeRestoreOptions = {}): Promise<VolumeRestoreReport> {
  return guarded(() => restore(home, jobId, volume, opts));
}

async function restore(home: Home, jobId: number, volume: string, opts: VolumeRestoreOptions): Promise<VolumeRestoreReport> {
  const started = Date.now();
  const log = (line: string): void => opts.onLog?.(line);
  const planned = planHomeRestore(home, jobId, opts);
  const { job, from, length } = planned;
  const mirrors = new Mirrors(home);
  const info = mirrors.store.open(volume, { readOnly: true }).info();
  if (from + length > info.size) {
    throw new PlexusError('E_SIZE', `volume ${volume} is ${info.size} bytes: too small for bytes ${from}..${from + length} of job ${jobId} (${job.target}, ${job.targetSize} bytes)`);
  }
  const asSecondary = mirrors.records.all().find((r) => r.secondary === volume);
  if (asSecondary) {
    throw new PlexusError('E_STATE', `volume ${volume} is the secondary of pair ${asSecondary.primary} → ${volume}; restore into the primary ${asSecondary.primary} (its pairs follow)`);
  }
  const pairs = mirrors.records.ofPrimary(volume);
  const mode = pairs.length > 0 ? (opts.mirror ?? 'duplex') : null;
  const clients = opts.users?.clients(volume) ?? 0;
  if (clients > 0 && !opts.force) {
    throw new PlexusError(
      'E_BUSY',
      `volume ${volume} is in use (${clients} NBD client${clients === 1 ? '' : 's'} connected); stop them, or restore with --force to cut them and pause its export for the restore`,
    );
  }
  const resume = opts.users?.pause(volume);
  if (resume) log(`export of ${volume} paused${clients > 0 ? ` (${clients} client${clients === 1 ? '' : 's'} cut)` : ''}`);
  const duplexed: string[] = [];
  const tracked: string[] = [];
  const resynced: Array<{ pair: string; bytes: number }> = [];
  let splitForUs: string[] = [];
  try {
    if (mode === 'resync') {
      const toSplit = pairs.filter((r) => isDuplexing(r.state)).map((r) => r.secondary);
      for (const plex of toSplit) {
        await mirrors.split({ primary: volume, plex });
        log(`split ${volume} → ${plex} for the restore`);
      }
      splitForUs = toSplit;
    }
    const done = await restoreThrough(home, mirrors, volume, planned, opts);
    for (const r of mirrors.records.ofPrimary(volume)) {
      if (splitForUs.includes(r.secondary)) continue;
      (isDuplexing(r.state) ? duplexed : tracked).push(`${volume} → ${r.secondary}`);
    }
    log(`restored ${done.bytes} bytes of job ${jobId} into ${volume} from ${done.loaded.join(', ')}`);
    for (const plex of splitForUs) {
      const [r] = await mirrors.resync({ primary: volume, plex }, { signal: opts.signal, onProgress: opts.onProgress });
      resynced.push({ pair: `${volume} → ${plex}`, bytes: r?.bytesCopied ?? 0 });
      log(`resynced ${volume} → ${plex}: ${r?.bytesCopied ?? 0} bytes`);
    }
    return {
      job: jobId,
      target: job.target,
      volume,
      offset: from,
      bytes: done.bytes,
      segments: planned.segments.length,
      loaded: done.loaded,
      copy: planned.copy,
      mirror: mode,
      duplexed,
      resynced,
      tracked,
      clientsCut: clients,
      elapsedMs: Date.now() - started,
    };
  } catch (e) {
    // The volume holds part of the restore; its pairs hold it too or have it dirty, so
    // a resync (or the restore again) makes them whole. Say which.
    const left = splitForUs.length > 0 ? `; pairs ${splitForUs.map((p) => `${volume} → ${p}`).join(', ')} stay split with the restored regions dirty: \`plexus pair resync ${volume}\`` : '';
    log(`restore into ${volume} failed: ${(e as Error).message}${left}`);
    throw e;
  } finally {
    resume?.();
  }
}

/** Reads the plan's segments into `volume` through its write path (its pairs' plexes). */
async function restoreThrough(home: Home, mirrors: Mirrors, volume: string, planned: RestorePlan, opts: RestoreOptions): Promise<{ bytes: number; loaded: string[] }> {
  const hasPairs = mirrors.records.ofPrimary(volume).length > 0;
  const set = hasPairs ? PlexSet.open(mirrors.store, mirrors.records, volume) : undefined;
  const v = set ? undefined : mirrors.store.open(volume);
  try {
    const plex: NativePlex = set?.plex ?? PlexSet.plexFor?.(v!) ?? callNative(() => native.NativePlex.create(v!.handle));
    const cancelled = (): PlexusError => new PlexusError('E_CANCELLED', `restore of job ${planned.job.id} into ${volume} cancelled: the volume holds part of it`);
    // In place: source offset o goes to the volume's offset o.
    return await readSegments(home, planned, opts, cancelled, plex, 0);
  } finally {
    set?.close();
  }
}
