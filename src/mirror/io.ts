/**
 * Reads and writes of a volume as hosts see it: through its pairs when it has any.
 * A primary's writes are duplexed or tracked; a split secondary enforces its
 * read-only attribute and host access list; an instant split's secondary reads
 * regions not yet filled from the primary.
 */

import { awaitNative, callNative, PlexusError } from '../errors.js';
import { hostIdentity } from '../home/home.js';
import type { NativePlex } from '../native/binding.js';
import type { VolumeStore } from '../volumes/store.js';
import type { Volume } from '../volumes/volume.js';
import { type OpenPair, type PairSuspension, PlexSet } from './plexset.js';
import type { PairRecord, PairRecords } from './record.js';
import { isDuplexing } from './states.js';

/** How a volume is opened for I/O. */
export interface IoOptions {
  write?: boolean;
  /** The host identity asking (checked against a secondary's access list); default
   * `hostIdentity()`. */
  host?: string;
  /**
   * Told, once per pair, when opening or writing a primary suspends one of its pairs
   * (PSUE): a secondary that refused a duplexed write, one that cannot be opened, an
   * owner that died. The write itself succeeds (the primary and the other plexes hold
   * the data; the difference is recorded for `pair resync`). Also kept in
   * `VolumeIo.suspended`.
   */
  onSuspend?: (s: PairSuspension) => void;
  /** Do not make the writes durable at `close` (a caller writing many pieces flushes once, at its end). */
  deferFlush?: boolean;
}

/** Byte access to a volume that honours its pairs. */
export interface VolumeIo {
  readonly name: string;
  readonly size: number;
  read(offset: number, length: number): Buffer;
  write(offset: number, data: Buffer): void;
  /** Writes off the JS thread where the write may wait (a synchronous remote pair); else as `write`. */
  writeAsync?(offset: number, data: Buffer): Promise<void>;
  checksum(offset?: number, length?: number): Promise<string>;
  /** Pairs suspended (PSUE) by opening or writing through this handle, in order. */
  readonly suspended: readonly PairSuspension[];
  close(): void;
}

/**
 * The access rules of a secondary, in every state (docs/mirrors.md, "Access to a
 * secondary"). The access list (`allow`, empty: every host) is the pair's, kept from
 * one split to the next: a host not on it never reaches the secondary (E_ACCESS); a
 * host on it reaches it only while the pair is split (JP 2002-041345, Fig. 6: the
 * backup host gets the secondary once it is split and loses it before the resync), so
 * in COPY, PAIR and COPY(RS) it is refused too (E_ACCESS). A mirrored secondary is
 * never writable (E_STATE); a read-only split one refuses writes (E_READONLY).
 */
export function checkSecondaryAccess(r: PairRecord, opts: IoOptions): void {
  const host = hostIdentity(opts.host);
  const pair = `${r.primary} → ${r.secondary}`;
  if (r.allow.length > 0 && !r.allow.includes(host)) {
    throw new PlexusError('E_ACCESS', `host ${host} may not access volume ${r.secondary} (secondary of ${r.primary}, in ${r.state}; allowed: ${r.allow.join(', ')})`);
  }
  if (isDuplexing(r.state)) {
    if (opts.write) {
      throw new PlexusError('E_STATE', `volume ${r.secondary} is the secondary of pair ${pair} in ${r.state}; split the pair before writing to it`);
    }
    if (r.allow.length > 0) {
      throw new PlexusError('E_ACCESS', `host ${host} may access volume ${r.secondary} only while pair ${pair} is split; it is in ${r.state}`);
    }
    return;
  }
  if (opts.write && r.readOnly) {
    throw new PlexusError('E_READONLY', `volume ${r.secondary} is read-only (split secondary of ${r.primary}) for host ${host}`);
  }
}

/**
 * Refuses to use the data file of an instant split's secondary whose fill is pending as
 * an image (`use`: what was asked, e.g. "back it up"): hosts read the regions not yet
 * filled from the primary (which keeps them as of the split by copy on write), so the
 * file itself does not hold the image yet. E_STATE, suggesting `pair fill`.
 */
function refuseUnfilledImage(r: PairRecord | undefined, use: string): void {
  if (!r?.fillPending) return;
  throw new PlexusError(
    'E_STATE',
    `volume ${r.secondary} is the secondary of instant split ${r.primary} → ${r.secondary}, whose fill is pending: its data file does not hold the image yet (the rest is read from ${r.primary}), so Plexus will not ${use}; run \`plexus pair fill ${r.primary}\` first`,
  );
}

/**
 * The rules for reading a volume's data file directly, as a backup or a copy does, when
 * it is the secondary `r` of a pair: the pair's access list for `host` (every state),
 * and not an instant split whose fill is pending (`use`: what was asked).
 */
export function checkDataFileRead(r: PairRecord | undefined, host: string | undefined, use: string): void {
  if (!r) return;
  checkSecondaryAccess(r, { host });
  refuseUnfilledImage(r, use);
}

class PlainIo implements VolumeIo {
  readonly suspended: readonly PairSuspension[] = [];
  constructor(
    private readonly v: Volume,
    private readonly flushAtClose = false,
  ) {}
  get name(): string {
    return this.v.name;
  }
  get size(): number {
    return this.v.size;
  }
  read(offset: number, length: number): Buffer {
    return this.v.read(offset, length);
  }
  write(offset: number, data: Buffer): void {
    this.v.write(offset, data);
  }
  checksum(offset = 0, length?: number): Promise<string> {
    return this.v.checksum(offset, length);
  }
  close(): void {
    if (this.flushAtClose) this.v.flush();
  }
}

/**
 * A volume written through the agent's write path for it (./plexset.ts `plexFor`), so
 * its checkpoints, its remote replication and its fence see every write.
 */
class PlexIo extends PlainIo {
  constructor(
    v: Volume,
    private readonly plex: NativePlex,
    flushAtClose: boolean,
  ) {
    super(v, flushAtClose);
  }
  override write(offset: number, data: Buffer): void {
    callNative(() => this.plex.write(offset, data));
  }
  writeAsync(offset: number, data: Buffer): Promise<void> {
    return this.plex.replicated ? awaitNative(callNative(() => this.plex.writeAsync(offset, data))) : Promise.resolve(this.write(offset, data));
  }
}

class PrimaryIo implements VolumeIo {
  private readonly seen: PairSuspension[] = [];
  constructor(
    private readonly set: PlexSet,
    onSuspend?: (s: PairSuspension) => void,
  ) {
    const tell = (s: PairSuspension): void => {
      this.seen.push(s);
      onSuspend?.(s);
    };
    for (const s of set.suspendedAtOpen) tell(s);
    set.onSuspend = tell;
  }
  get suspended(): readonly PairSuspension[] {
    return this.seen;
  }
  get name(): string {
    return this.set.primary.name;
  }
  get size(): number {
    return this.set.primary.size;
  }
  read(offset: number, length: number): Buffer {
    return this.set.primary.read(offset, length);
  }
  write(offset: number, data: Buffer): void {
    this.set.writePrimary(offset, data);
  }
  writeAsync(offset: number, data: Buffer): Promise<void> {
    return this.set.writePrimaryAsync(offset, data);
  }
  checksum(offset = 0, length?: number): Promise<string> {
    return this.set.primary.checksum(offset, length);
  }
  close(): void {
    this.set.close();
  }
}

class SecondaryIo implements VolumeIo {
  readonly suspended: readonly PairSuspension[] = [];
  constructor(
    private readonly set: PlexSet,
    private readonly pair: OpenPair,
  ) {}
  get name(): string {
    return this.pair.record.secondary;
  }
  get size(): number {
    return this.pair.secondary.size;
  }
  read(offset: number, length: number): Buffer {
    return callNative(() => this.pair.mirror.readSecondary(offset, length));
  }
  write(offset: number, data: Buffer): void {
    callNative(() => this.pair.mirror.writeSecondary(offset, data));
  }
  checksum(offset = 0, length?: number): Promise<string> {
    const len = length ?? this.size - offset;
    return awaitNative(callNative(() => this.pair.mirror.checksumSecondary(offset, len)));
  }
  close(): void {
    this.set.close();
  }
}

/** Opens `name` for I/O, through its pairs when it is in any. */
export function openVolumeIo(store: VolumeStore, records: PairRecords, name: string, opts: IoOptions = {}): VolumeIo {
  const all = records.all();
  const asSecondary = all.find((r) => r.secondary === name);
  if (asSecondary) {
    checkSecondaryAccess(asSecondary, opts);
    // A plain read suffices unless the image is partly still on the primary or a
    // write must be tracked for the next resync.
    if (!opts.write && !asSecondary.fillPending) return new PlainIo(store.open(name, { readOnly: true }));
    const set = PlexSet.open(store, records, asSecondary.primary);
    try {
      return new SecondaryIo(set, set.get(name));
    } catch (e) {
      set.close();
      throw e;
    }
  }
  if (opts.write && all.some((r) => r.primary === name)) {
    const set = PlexSet.open(store, records, name);
    try {
      return new PrimaryIo(set, opts.onSuspend);
    } catch (e) {
      set.close();
      throw e;
    }
  }
  if (opts.write && PlexSet.plexFor) {
    const v = store.open(name);
    return new PlexIo(v, PlexSet.plexFor(v), !opts.deferFlush);
  }
  return new PlainIo(store.open(name, { readOnly: !opts.write }), Boolean(opts.write) && !opts.deferFlush);
}
