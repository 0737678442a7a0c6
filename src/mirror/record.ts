/** The durable record of each pair: one JSON file per pair, replaced atomically. */
import fs from 'node:fs';
import path from 'node:path';
import { fromSystem, PlexusError } from '../errors.js';
import type { Home } from '../home/home.js';
import { syncDir, writeFileDurable } from '../util/durable.js';
import type { FileStamp } from '../volumes/store.js';
import type { PairState } from './states.js';

/** A long operation in progress (or interrupted) on a pair. */
export interface PairOperation {
  kind: 'copy' | 'resync' | 'reverse' | 'fill';
  full: boolean;
  pid: number;
  startedAt: string;
  done: number;
  total: number;
}

/** Everything known about a pair, persisted across restarts. */
export interface PairRecord {
  format: 1;
  primary: string;
  secondary: string;
  group?: string;
  state: PairState;
  granularity: number;
  writeIntent: boolean;
  /** An instant split whose secondary is not filled yet. */
  fillPending: boolean;
  /** A failure left the bitmaps incomplete: the next resync must copy everything. */
  needsFull: boolean;
  /** Secondary attributes while split. */
  readOnly: boolean;
  allow: string[];
  operation?: PairOperation;
  createdAt: string;
  updatedAt: string;
  splitAt?: string;
  /** The secondary's data file as the split left it (for an instant split: as its fill
   * left it): a backup compares it to tell a frozen image from one written since. */
  splitStamp?: FileStamp;
  frozenMs?: number;
  lastError?: string;
}

/** Reads and writes pair records in `HOME/pairs/`, keyed by secondary (a volume is the
 * secondary of at most one pair; a primary may have several plexes). */
export class PairRecords {
  constructor(readonly dir: string) {}

  /** The pair records of a storage home. */
  static of(home: Home): PairRecords {
    return new PairRecords(path.join(home.dir, 'pairs'));
  }

  /** File of the pair whose secondary is `secondary`. */
  file(secondary: string): string {
    return path.join(this.dir, `${secondary}.pair.json`);
  }

  /** The lock file that guards all pairs of `primary`. */
  /** Where a primary keeps its dirty-bitmap checkpoints (`pair checkpoint`). */
  checkpointDir(primary: string): string {
    return path.join(this.dir, `${primary}.checkpoints`);
  }

  lockFile(primary: string): string {
    try {
      fs.mkdirSync(this.dir, { recursive: true });
    } catch (e) {
      throw fromSystem(e, this.dir);
    }
    return path.join(this.dir, `${primary}.lock`);
  }

  /** Records (or clears) that a process has the pairs of `primary` open; a marker
   * found by the next owner means the last one died without closing. The marker is
   * written durably (fsynced file, rename, fsynced directory) before the first write it
   * guards is acknowledged, and its removal is fsynced: a crash must find it, and a
   * clean close must not leave it to come back after a power loss. */
  markOpen(primary: string, open: boolean): void {
    const marker = path.join(this.dir, `${primary}.open`);
    try {
      fs.mkdirSync(this.dir, { recursive: true });
      if (open) {
        writeFileDurable(marker, `${process.pid}\n`);
        return;
      }
      if (!fs.existsSync(marker)) return;
      fs.rmSync(marker, { force: true });
      syncDir(this.dir);
    } catch (e) {
      throw fromSystem(e, marker);
    }
  }

  /** Whether the last owner of `primary`'s pairs died with them open. */
  wasLeftOpen(primary: string): boolean {
    return fs.existsSync(path.join(this.dir, `${primary}.open`));
  }

  /** Bitmap files of a pair. */
  bitmaps(secondary: string): { primaryDirty: string; secondaryDirty: string; filled: string } {
    const base = path.join(this.dir, secondary);
    return { primaryDirty: `${base}.pdirty.bitmap`, secondaryDirty: `${base}.sdirty.bitmap`, filled: `${base}.filled.bitmap` };
  }

  /** Loads one record, or undefined when there is no such pair. */
  find(secondary: string): PairRecord | undefined {
    let text: string;
    try {
      text = fs.readFileSync(this.file(secondary), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw fromSystem(e, this.file(secondary));
    }
    try {
      const r = JSON.parse(text) as PairRecord;
      if (r.format !== 1) throw new Error(`format ${String(r.format)}`);
      return r;
    } catch (e) {
      throw new PlexusError('E_CORRUPT', `pair record ${this.file(secondary)} is unreadable: ${(e as Error).message}`, { cause: e });
    }
  }

  /** Every pair, sorted by primary then secondary. */
  all(): PairRecord[] {
    if (!fs.existsSync(this.dir)) return [];
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch (e) {
      throw fromSystem(e, this.dir);
    }
    return names
      .filter((f) => f.endsWith('.pair.json'))
      .map((f) => this.find(f.slice(0, -'.pair.json'.length)))
      .filter((r): r is PairRecord => r !== undefined)
      .sort((a, b) => a.primary.localeCompare(b.primary) || a.secondary.localeCompare(b.secondary));
  }

  /** Pairs whose primary is `primary`. */
  ofPrimary(primary: string): PairRecord[] {
    return this.all().filter((r) => r.primary === primary);
  }

  /** Writes a record durably: temporary file, fsync, rename, fsync of the directory. */
  save(r: PairRecord): void {
    const file = this.file(r.secondary);
    try {
      fs.mkdirSync(this.dir, { recursive: true });
      r.updatedAt = new Date().toISOString();
      writeFileDurable(file, `${JSON.stringify(r, null, 2)}\n`);
    } catch (e) {
      throw fromSystem(e, file);
    }
  }

  /** Deletes a pair's record and bitmaps. */
  remove(secondary: string): void {
    const b = this.bitmaps(secondary);
    for (const f of [b.primaryDirty, b.secondaryDirty, b.filled, this.file(secondary)]) {
      for (const g of f === this.file(secondary) ? [f] : [f, `${f}.log`, `${f}.tmp`]) {
        try {
          fs.rmSync(g, { force: true });
        } catch (e) {
          throw fromSystem(e, g);
        }
      }
    }
  }
}
