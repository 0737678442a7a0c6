/**
 * Virtual tape libraries: a directory with slots of cartridges (one file each) and a
 * number of drives. Drives and cartridges are claimed with kernel file locks, so jobs in
 * several processes share a library safely and a killed job's claims vanish with it.
 *
 * A library is of one of two kinds. A tape library has a fixed number of slots, each
 * with a cartridge formatted when the library is created, in the home. A disk library
 * (src/tape/disk-library.ts, docs/disk-library.md) keeps its cartridge files, in the
 * same format, in a directory of its own, typically on another file system, and
 * creates a new cartridge whenever a job needs one and none is free.
 */
import fs from 'node:fs';
import path from 'node:path';
import { callNative, PlexusError } from '../errors.js';
import type { Home } from '../home/home.js';
import { native } from '../native/binding.js';
import { syncDir, writeFileDurable } from '../util/durable.js';
import { checkVolumeName } from '../volumes/names.js';
import { diskCartridges } from './disk-library.js';

/** A kernel lock held by this process (a drive's or a cartridge's claim). */
export type OwnerLock = InstanceType<typeof native.NativeOwnerLock>;

/** What a library's cartridges are kept in. */
export type LibraryKind = 'tape' | 'disk';

/** The persistent description of a library (`library.json`). */
export interface LibraryConfig {
  format: 1;
  /** Absent in libraries described before disk libraries existed: those are tape libraries. */
  kind?: LibraryKind;
  /** A disk library's directory, where its cartridge files are. */
  dir?: string;
  /** A disk library's barcode prefix: its cartridges are the prefix and a 6-digit counter. */
  prefix?: string;
  name: string;
  slots: number;
  drives: number;
  /** Logical capacity of each cartridge, bytes. */
  cartridgeSize: number;
  /** Tape block size, bytes. */
  blockSize: number;
  createdAt: string;
  /** Slot number (from 0) → barcode of the cartridge in it. A disk library's slots are
   * its cartridges' counters less one; as opened, they are the cartridges recorded
   * here together with those its directory holds (and `slots` their number). */
  cartridges: Array<{ slot: number; barcode: string }>;
}

/** Options of `Library.create`. */
export interface CreateLibraryOptions {
  slots: number;
  drives: number;
  cartridgeSize: number;
  blockSize?: number;
  /** Barcode prefix (default: the first letters of the name, upper case). */
  prefix?: string;
}

/** Default tape block size: large enough that per-block overhead is noise. */
export const DEFAULT_TAPE_BLOCK = 256 * 1024;

/** A drive claimed by this process; `release` frees it for other jobs. Which cartridge
 * it holds is written beside its lock, so `library show` can tell. */
export class DriveClaim {
  private current: string | null = null;
  private released = false;

  constructor(
    readonly library: Library,
    readonly drive: number,
    private readonly lock: OwnerLock,
    private readonly stateFile: string,
  ) {
    this.record();
  }

  /** The cartridge loaded in the drive, if any. */
  get loaded(): string | null {
    return this.current;
  }

  /** Notes that `barcode` is loaded (null: unloaded). */
  setLoaded(barcode: string | null): void {
    this.current = barcode;
    this.record();
  }

  /** Frees the drive. */
  release(): void {
    if (this.released) return;
    this.released = true;
    try {
      fs.rmSync(this.stateFile, { force: true });
    } finally {
      this.lock.release();
    }
  }

  private record(): void {
    writeFileDurable(this.stateFile, `${JSON.stringify({ loaded: this.current, pid: process.pid })}\n`, ADVISORY);
  }
}

/**
 * Why a drive's record is replaced whole (temporary file, rename) but not synced:
 * `library show` and the inventory read it while the drive's holder rewrites it; the rename
 * means they never see it torn. It is not fsynced because it is advisory: the drive's
 * kernel lock is the truth, and the record is read only while that lock is held, that
 * is while the process that wrote it lives. A crash or power loss ends the lock, so
 * whatever of the record survived (old, new, or lost) is never read as the drive's
 * state; the next holder writes it afresh. A backup stream rewrites it at every
 * cartridge switch, and an fsync there (of the file and the directory, behind the
 * journal commits of the cartridge being closed) stalled the writer (docs/bench-backup.md).
 */
const ADVISORY = { sync: false } as const;

/** Sleeps, or rejects with E_CANCELLED when the signal aborts. */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new PlexusError('E_CANCELLED', 'cancelled while waiting for a drive'));
    const t = setTimeout(resolve, ms);
    const abort = (): void => {
      clearTimeout(t);
      reject(new PlexusError('E_CANCELLED', 'cancelled while waiting for a drive'));
    };
    signal?.addEventListener('abort', abort, { once: true });
  });
}

/** Tries a kernel lock; undefined if another holder has it. */
function tryLock(file: string, what: string): OwnerLock | undefined {
  try {
    return callNative(() => native.NativeOwnerLock.acquire(file, what));
  } catch (e) {
    if ((e as PlexusError).code === 'E_BUSY') return undefined;
    throw e;
  }
}

/** E_INVALID unless `v` is a whole number from `min` to `max`. */
export function checkCount(v: number, what: string, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) throw new PlexusError('E_INVALID', `${what} must be a whole number from ${min} to ${max}, not ${v}`);
}

/** Checks drives, block size and cartridge size of a new library; returns the block size. */
export function checkGeometry(opts: { drives: number; cartridgeSize: number; blockSize?: number }): number {
  checkCount(opts.drives, 'drives', 1, 256);
  const blockSize = opts.blockSize ?? DEFAULT_TAPE_BLOCK;
  if (!Number.isInteger(blockSize) || blockSize < 4096 || blockSize > 64 << 20 || (blockSize & (blockSize - 1)) !== 0) {
    throw new PlexusError('E_INVALID', `tape block size ${blockSize} must be a power of two from 4 KiB to 64 MiB`);
  }
  if (!Number.isSafeInteger(opts.cartridgeSize) || opts.cartridgeSize < 16 * blockSize) {
    throw new PlexusError('E_INVALID', `cartridge size ${opts.cartridgeSize} must hold at least 16 blocks of ${blockSize} bytes`);
  }
  return blockSize;
}

/** The barcode prefix of a new library: `given`, else the first letters of its name, upper case. */
export function barcodePrefix(name: string, given?: string): string {
  const prefix = (
    given ??
    name
      .replace(/[^A-Za-z0-9]/g, '')
      .slice(0, 3)
      .padEnd(3, 'X')
  ).toUpperCase();
  if (!/^[A-Z0-9]{1,4}$/.test(prefix)) throw new PlexusError('E_INVALID', `barcode prefix ${prefix} must be 1 to 4 letters or digits`);
  return prefix;
}

/** One tape library of a home. */
export class Library {
  private constructor(
    readonly dir: string,
    readonly config: LibraryConfig,
  ) {}

  /** Directory of all libraries of a home. */
  static root(home: Home): string {
    return path.join(home.dir, 'libraries');
  }

  /** Creates a library and its blank cartridges; `format` writes each cartridge's label. */
  static create(home: Home, name: string, opts: CreateLibraryOptions, format: (file: string, barcode: string, capacity: number, blockSize: number) => void): Library {
    checkVolumeName(name);
    checkCount(opts.slots, 'slots', 1, 10_000);
    const blockSize = checkGeometry(opts);
    if (fs.existsSync(path.join(Library.root(home), name, 'library.json'))) throw new PlexusError('E_EXISTS', `library ${name} already exists`);
    const taken = new Set(Library.list(home).flatMap((l) => l.config.cartridges.map((c) => c.barcode)));
    const prefix = barcodePrefix(name, opts.prefix);
    const cartridges: LibraryConfig['cartridges'] = [];
    for (let n = 1; cartridges.length < opts.slots; n++) {
      const barcode = `${prefix}${String(n).padStart(6 - prefix.length, '0')}L9`;
      if (!taken.has(barcode)) cartridges.push({ slot: cartridges.length, barcode });
    }
    const config: LibraryConfig = {
      format: 1,
      kind: 'tape',
      name,
      slots: opts.slots,
      drives: opts.drives,
      cartridgeSize: opts.cartridgeSize,
      blockSize,
      createdAt: new Date().toISOString(),
      cartridges,
    };
    // The library exists once library.json does: written last, durably, with the
    // directories above it synced so the library's own entry survives a crash too.
    // Its cartridges were synced by format.
    return Library.define(home, config, (lib) => {
      for (const c of cartridges) format(lib.cartridgeFile(c.barcode), c.barcode, opts.cartridgeSize, blockSize);
    });
  }

  /** Opens a library by name; E_NOENT if there is none. */
  static open(home: Home, name: string): Library {
    checkVolumeName(name);
    return Library.openDir(path.join(Library.root(home), name));
  }

  /** Opens the library in `dir`. */
  static openDir(dir: string): Library {
    const file = path.join(dir, 'library.json');
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      throw new PlexusError('E_NOENT', `no library ${path.basename(dir)} (${dir})`);
    }
    let config: LibraryConfig;
    try {
      config = JSON.parse(text) as LibraryConfig;
      if (config.format !== 1) throw new Error(`format ${String(config.format)}`);
      if (config.kind !== undefined && config.kind !== 'tape' && config.kind !== 'disk') throw new Error(`kind ${String(config.kind)}`);
      if (config.kind === 'disk' && (typeof config.dir !== 'string' || !path.isAbsolute(config.dir) || typeof config.prefix !== 'string'))
        throw new Error('a disk library without its directory or prefix');
    } catch (e) {
      throw new PlexusError('E_CORRUPT', `library description ${file} is unreadable: ${(e as Error).message}`, { cause: e });
    }
    if (config.kind !== 'disk') return new Library(dir, { ...config, kind: 'tape' });
    // The cartridges recorded, and any the directory holds that were not (created by
    // a process whose update of library.json lost a race, or before an import): a
    // directory that is gone (unmounted) still has its cartridges, missing.
    const cartridges = diskCartridges(config.dir!, config.prefix!, config.cartridges);
    return new Library(dir, { ...config, cartridges, slots: Math.max(1, cartridges.length) });
  }

  /** Describes a new library of this home; `config` is written as its library.json once `prepare` succeeded. */
  static define(home: Home, config: LibraryConfig, prepare: (lib: Library) => void): Library {
    const dir = path.join(Library.root(home), config.name);
    if (fs.existsSync(path.join(dir, 'library.json'))) throw new PlexusError('E_EXISTS', `library ${config.name} already exists`);
    fs.mkdirSync(path.join(dir, 'cartridges'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'drives'), { recursive: true });
    const lib = new Library(dir, config);
    prepare(lib);
    syncDir(path.join(dir, 'cartridges'));
    syncDir(path.join(dir, 'drives'));
    lib.save();
    syncDir(Library.root(home));
    return lib;
  }

  /** Writes library.json durably (temporary file, fsync, rename, fsync of its directory). */
  save(): void {
    writeFileDurable(path.join(this.dir, 'library.json'), `${JSON.stringify(this.config, null, 2)}\n`);
  }

  /** Notes a cartridge a disk library just created (library.json is rewritten). */
  addCartridge(barcode: string, slot: number): void {
    // What another process recorded meanwhile is kept (a lost race would only hide a
    // cartridge from library.json, not from the directory, which is read too).
    const now = Library.openDir(this.dir).config.cartridges;
    const all = new Map([...this.config.cartridges, ...now, { slot, barcode }].map((c) => [c.barcode, c.slot]));
    this.config.cartridges.splice(0, Infinity, ...[...all].map(([b, n]) => ({ slot: n, barcode: b })).sort((a, b) => a.slot - b.slot));
    this.config.slots = this.config.cartridges.length;
    this.save();
  }

  /** tape or disk. */
  get kind(): LibraryKind {
    return this.config.kind ?? 'tape';
  }

  /** Where the cartridge files are: the library's `cartridges` directory, or a disk library's own. */
  get cartridgeDir(): string {
    return this.kind === 'disk' ? this.config.dir! : path.join(this.dir, 'cartridges');
  }

  /** Every library of a home, by name. */
  static list(home: Home): Library[] {
    const root = Library.root(home);
    if (!fs.existsSync(root)) return [];
    return fs
      .readdirSync(root)
      .filter((n) => fs.existsSync(path.join(root, n, 'library.json')))
      .sort()
      .map((n) => Library.openDir(path.join(root, n)));
  }

  /** The library's name. */
  get name(): string {
    return this.config.name;
  }

  /** Path of a cartridge's file. */
  cartridgeFile(barcode: string): string {
    return path.join(this.cartridgeDir, `${barcode}.tape`);
  }

  /** The slot of a cartridge, or E_NOENT. */
  slotOf(barcode: string): number {
    const c = this.config.cartridges.find((x) => x.barcode === barcode);
    if (!c) throw new PlexusError('E_NOENT', `cartridge ${barcode} is not in library ${this.name}`);
    return c.slot;
  }

  /** Whether the cartridge's file is present in the library. */
  present(barcode: string): boolean {
    return fs.existsSync(this.cartridgeFile(barcode));
  }

  /** Which drive holds which cartridge right now (from the drives' state files). */
  drives(): Array<{ drive: number; busy: boolean; loaded: string | null; pid: number | null }> {
    const out = [];
    for (let d = 0; d < this.config.drives; d++) {
      const busy = native.NativeOwnerLock.isHeld(this.driveLock(d));
      let loaded: string | null = null;
      let pid: number | null = null;
      if (busy) {
        try {
          const s = JSON.parse(fs.readFileSync(this.driveState(d), 'utf8')) as { loaded: string | null; pid: number };
          loaded = s.loaded;
          pid = s.pid;
        } catch {
          // A drive claimed a moment ago has not written its state yet.
        }
      }
      out.push({ drive: d, busy, loaded, pid });
    }
    return out;
  }

  private driveLock(d: number): string {
    return path.join(this.dir, 'drives', `drive${d}.lock`);
  }

  private driveState(d: number): string {
    return path.join(this.dir, 'drives', `drive${d}.json`);
  }

  /**
   * Claims a free drive, waiting (polling) while all are busy: a job waits for a drive
   * rather than failing. `onWait` is told once that the job is waiting. `unavailable`,
   * asked again at every poll, names the drives that must not be claimed (the
   * inventory marked them unavailable, e.g. after a command got stuck in one): they
   * are skipped; when it names every drive there is nothing to wait for (E_RESOURCES).
   */
  async claimDrive(opts: { signal?: AbortSignal; timeoutMs?: number; onWait?: () => void; unavailable?: () => ReadonlySet<number> } = {}): Promise<DriveClaim> {
    const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
    let told = false;
    for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
      const off = opts.unavailable?.() ?? new Set<number>();
      let candidates = 0;
      for (let d = 0; d < this.config.drives; d++) {
        if (off.has(d)) continue;
        candidates++;
        const lock = tryLock(this.driveLock(d), `drive ${d} of library ${this.name}`);
        if (lock) return this.claim(d, lock);
      }
      if (candidates === 0) {
        throw new PlexusError(
          'E_RESOURCES',
          `every drive of library ${this.name} is marked unavailable in the inventory (\`plexus resources list\`; \`plexus resources set NAME --state available\` returns one to service)`,
        );
      }
      if (Date.now() >= deadline) throw new PlexusError('E_TIMEOUT', `no drive of library ${this.name} became free in time`);
      if (!told) {
        opts.onWait?.();
        told = true;
      }
      await pause(delay, opts.signal);
    }
  }

  private claim(drive: number, lock: OwnerLock): DriveClaim {
    return new DriveClaim(this, drive, lock, this.driveState(drive));
  }

  /** Claims a cartridge for exclusive use (so two jobs never write one); undefined if taken. */
  tryClaimCartridge(barcode: string): OwnerLock | undefined {
    return tryLock(this.cartridgeLock(barcode), `cartridge ${barcode}`);
  }

  /** Whether some job holds the cartridge's claim now. */
  cartridgeClaimed(barcode: string): boolean {
    return native.NativeOwnerLock.isHeld(this.cartridgeLock(barcode));
  }

  /** Claims the right to write a copy of job `jobId` into this library (`backup copy`); undefined while another process does. */
  tryClaimCopy(jobId: number): OwnerLock | undefined {
    const dir = path.join(this.dir, 'copies');
    fs.mkdirSync(dir, { recursive: true });
    return tryLock(path.join(dir, `job${jobId}.lock`), `the copy of job ${jobId} into library ${this.name}`);
  }

  // A disk library's claims are kept in the home too: its directory holds cartridges only.
  private cartridgeLock(barcode: string): string {
    return path.join(this.dir, 'cartridges', `${barcode}.lock`);
  }

  /** Claims a cartridge, waiting while another job uses it (a restore may need one a backup holds). */
  async claimCartridge(barcode: string, signal?: AbortSignal): Promise<OwnerLock> {
    if (!this.present(barcode)) throw new PlexusError('E_NOENT', `cartridge ${barcode} is missing from library ${this.name} (${this.cartridgeFile(barcode)})`);
    for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
      const lock = this.tryClaimCartridge(barcode);
      if (lock) return lock;
      await pause(delay, signal);
    }
  }
}
