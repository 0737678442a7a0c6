/**
 * `plexus bench catalog`: how the catalog's costs grow with its size. A synthetic catalog
 * (10^4 jobs, 10^6 segments over 10^3 cartridges by default) is written straight through
 * the catalog's database layer — no backups, no cartridges — and the operations users
 * run against years of jobs are timed on it: `catalog jobs`, `catalog show`, planning a
 * range restore, adding a job, settling dead jobs (each target: under 50 ms), and the
 * catalog phase of `catalog rebuild --library` for libraries of 1, 10 and 100 cartridges
 * (target: time grows with the cartridges scanned, not with the catalog).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { CartridgeIndexEntry } from '../backup/cartridge-index.js';
import { INDEX_FORMAT } from '../backup/cartridge-index.js';
import { rebuildRows, type ScannedCartridges } from '../backup/rebuild.js';
import { planRestore } from '../backup/restore.js';
import { Catalog, type NewSegment } from '../catalog/catalog.js';
import { CATALOG_FILE, type Db, openDatabase } from '../catalog/database.js';
import type { Home } from '../home/home.js';
import { describeMachine, type MachineInfo } from './machine.js';
import { loadAverage, median } from './measure.js';

/** The shape of a synthetic catalog. */
export interface SyntheticCatalogShape {
  jobs: number;
  segments: number;
  cartridges: number;
  /** Share of the segments held by one large job (the newest): a multi-TiB volume. */
  largeShare?: number;
}

/** What buildSyntheticCatalog wrote, for the operations to aim at. */
export interface SyntheticCatalog {
  file: string;
  jobs: number;
  segments: number;
  cartridges: number;
  /** Libraries by name, with their cartridge counts (1, 10, 100 first, then 100 each). */
  libraries: Array<{ name: string; cartridges: number }>;
  /** A job of the typical size, and the large one. */
  typicalJob: number;
  largeJob: number;
  /** Bytes per segment. */
  chunk: number;
  buildMs: number;
}

const CHUNK = 64 << 20;
const DEFAULT_SHAPE: Required<SyntheticCatalogShape> = { jobs: 10_000, segments: 1_000_000, cartridges: 1000, largeShare: 0.1 };

/** Cartridge counts of the libraries: 1, 10 and 100 (rebuild is timed on those), the rest by 100. */
function librarySizes(cartridges: number): number[] {
  const sizes: number[] = [];
  let left = cartridges;
  for (const s of [1, 10, 100]) {
    if (left < s) break;
    sizes.push(s);
    left -= s;
  }
  while (left > 0) {
    sizes.push(Math.min(100, left));
    left -= Math.min(100, left);
  }
  return sizes;
}

const hex = (n: number): string => n.toString(16).padStart(16, '0').repeat(4);

/**
 * Writes a synthetic catalog to `file` (which must not exist) through the catalog's
 * database layer, in one transaction with prepared statements. Jobs are spread over the
 * libraries in proportion to their cartridges; each job has one location entry and its
 * segments fill its library's cartridges in order, as nightly backups would. Job
 * `largeJob` (the newest) holds `largeShare` of the segments; every 50th job failed.
 */
export function buildSyntheticCatalog(file: string, shape: Partial<SyntheticCatalogShape> = {}): SyntheticCatalog {
  const s = { ...DEFAULT_SHAPE, ...shape };
  if (s.jobs < 2 || s.cartridges < 1 || s.segments < s.jobs) throw new RangeError('a synthetic catalog needs at least 2 jobs, 1 cartridge and a segment per job');
  const started = performance.now();
  const sizes = librarySizes(s.cartridges);
  const libraries = sizes.map((n, i) => ({ name: i < 3 && [1, 10, 100][i] === n ? `lib-${n}` : `lib-${String.fromCharCode(97 + ((i - 3) % 26))}${Math.floor((i - 3) / 26) || ''}`, cartridges: n }));
  // Cartridge k (0-based, in library order) and its library.
  const cartLib: number[] = [];
  libraries.forEach((l, i) => {
    for (let c = 0; c < l.cartridges; c++) cartLib.push(i);
  });
  const barcode = (k: number): string => `S${String(k).padStart(5, '0')}L9`;
  const largeJob = s.jobs;
  const large = Math.max(1, Math.floor(s.segments * s.largeShare));
  const per = Math.floor((s.segments - large) / (s.jobs - 1));
  const segsOf = (j: number): number => (j === largeJob ? s.segments - per * (s.jobs - 1) : per);
  // A job's library: the library of the cartridge at its share of the way through.
  const libOf = (j: number): number => cartLib[Math.min(s.cartridges - 1, Math.floor(((j - 1) * s.cartridges) / s.jobs))]!;
  const libSegments = libraries.map(() => 0);
  for (let j = 1; j <= s.jobs; j++) libSegments[libOf(j)]! += segsOf(j);
  const firstCart = libraries.map((_, i) => cartLib.indexOf(i));
  const perCart = libraries.map((l, i) => Math.ceil(libSegments[i]! / l.cartridges));
  const filled = libraries.map(() => 0);

  const db: Db = openDatabase(file);
  try {
    // Only while building: a bench catalog need not survive a power cut.
    db.pragma('synchronous = OFF');
    const base = Date.UTC(2020, 0, 1);
    const at = (minutes: number): string => new Date(base + minutes * 60_000).toISOString();
    db.transaction(() => {
      const lib = db.prepare(`INSERT INTO libraries (name, dir, slots, drives, cartridge_size, created_at) VALUES (?, ?, ?, 4, ?, ?)`);
      for (const l of libraries) lib.run(l.name, path.join(path.dirname(file), 'libraries', l.name), l.cartridges, 1 << 40, at(0));
      const media = db.prepare(`INSERT INTO media (barcode, library, slot, state, capacity, bytes, updated_at) VALUES (?, ?, ?, 'full', ?, ?, ?)`);
      for (let k = 0; k < s.cartridges; k++) {
        const i = cartLib[k]!;
        media.run(barcode(k), libraries[i]!.name, k - firstCart[i]!, 1 << 40, perCart[i]! * CHUNK, at(0));
      }
      const sched = db.prepare(`INSERT INTO schedule (id, at, target, library, status, created_at, last_run_at, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
      const job = db.prepare(
        `INSERT INTO jobs (id, target, target_size, mode, started_at, ended_at, data_time, status, pid, bytes, error, schedule_id, consistency)
         VALUES (?, ?, ?, 'single', ?, ?, ?, ?, NULL, ?, ?, ?, 'crash-consistent')`,
      );
      const loc = db.prepare(`INSERT INTO locations (id, job_id, copy, seq, library, stream, status) VALUES (?, ?, 0, 0, ?, 0, ?)`);
      const seg = db.prepare(`INSERT INTO segments (location_id, seq, barcode, file_number, first_block, source_offset, length, checksum, written_at) VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?)`);
      let segId = 0;
      for (let j = 1; j <= s.jobs; j++) {
        const n = segsOf(j);
        const i = libOf(j);
        const failed = j % 50 === 0 && j !== largeJob;
        const target = `vol${j % 100}`;
        sched.run(j, at(j * 60), target, libraries[i]!.name, failed ? 'failed' : 'done', at(0), at(j * 60), failed ? 'E_IO: synthetic' : `job ${j}`);
        // A failed job stopped before its last segment: its segments do not cover the source.
        job.run(j, target, (failed ? n + 1 : n) * CHUNK, at(j * 60), at(j * 60 + 30), at(j * 60), failed ? 'failed' : 'done', n * CHUNK, failed ? 'E_IO: synthetic' : null, j);
        loc.run(j, j, libraries[i]!.name, failed ? 'failed' : 'done');
        for (let q = 0; q < n; q++) {
          const k = firstCart[i]! + Math.min(libraries[i]!.cartridges - 1, Math.floor(filled[i]! / perCart[i]!));
          seg.run(j, q, barcode(k), filled[i]! % perCart[i]!, q * CHUNK, CHUNK, hex(++segId), at(j * 60 + 1));
          filled[i]!++;
        }
      }
    })();
    db.pragma('synchronous = FULL');
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
  return {
    file,
    jobs: s.jobs,
    segments: s.segments,
    cartridges: s.cartridges,
    libraries,
    typicalJob: Math.floor(s.jobs / 2) + 1,
    largeJob,
    chunk: CHUNK,
    buildMs: performance.now() - started,
  };
}

// ---- what each operation runs, and how SQLite plans it ----

/** A statement an operation prepared, with the plan SQLite chose for it. */
export interface PlannedQuery {
  sql: string;
  /** EXPLAIN QUERY PLAN's lines. */
  plan: string[];
}

/**
 * Runs `fn` and returns, besides its value, every statement it prepared on `catalog`'s
 * database with the plan SQLite chose for it. Statements a Catalog caches (the segment
 * insert) show only when first prepared.
 */
export function recordQueries<T>(catalog: Catalog, fn: () => T): { value: T; queries: PlannedQuery[] } {
  const db = catalog.db;
  const prepare = db.prepare;
  const seen: string[] = [];
  // An own property of the handle shadows the prototype's prepare until deleted.
  Object.defineProperty(db, 'prepare', {
    configurable: true,
    value: (sql: string) => {
      seen.push(sql);
      return prepare.call(db, sql);
    },
  });
  let value: T;
  try {
    value = fn();
  } finally {
    delete (db as unknown as Record<string, unknown>).prepare;
  }
  return { value, queries: [...new Set(seen)].map((sql) => ({ sql: squash(sql), plan: planOf(db, sql) })) };
}

const squash = (sql: string): string => sql.replace(/\s+/g, ' ').trim();

/** EXPLAIN QUERY PLAN of `sql`, its parameters bound to NULL (no statistics: the plan does not depend on them). */
export function planOf(db: Db, sql: string): string[] {
  const named = [...new Set([...sql.matchAll(/@(\w+)/g)].map((m) => m[1]!))];
  const stmt = db.prepare(`EXPLAIN QUERY PLAN ${sql}`);
  const rows = (named.length > 0 ? stmt.all(Object.fromEntries(named.map((n) => [n, null]))) : stmt.all(...new Array((sql.match(/\?/g) ?? []).length).fill(null))) as Array<{ detail: string }>;
  return rows.map((r) => r.detail);
}

/** The plan lines of `queries` that read every row of a table (or of an index of it) of those that grow with the catalog. */
export function fullScans(queries: readonly PlannedQuery[]): string[] {
  const aliases = /^SCAN (jobs|locations|segments|schedule|media|j|l|s|x|m)\b/;
  return queries.flatMap((q) => q.plan.filter((p) => aliases.test(p)).map((p) => `${p} in: ${q.sql.slice(0, 120)}`));
}

// ---- the benchmark ----

/** One timed operation. */
export interface CatalogOperation {
  name: string;
  /** What it runs, as the CLI would. */
  what: string;
  medianMs: number;
  bestMs: number;
  runsMs: number[];
  /** Rows it returned or wrote. */
  rows: number;
  /** Full scans in its plans (expected only where it returns every row: `catalog jobs`). */
  fullScans: string[];
}

/** The catalog phase of `catalog rebuild --library L`, timed. */
export interface RebuildTiming {
  library: string;
  cartridges: number;
  segments: number;
  catalogSegments: number;
  medianMs: number;
  runsMs: number[];
}

/** What `bench catalog` measured. */
export interface CatalogBenchResult {
  benchmark: 'catalog';
  date: string;
  machine: MachineInfo;
  shape: { jobs: number; segments: number; cartridges: number; libraries: number; typicalJobSegments: number; largeJobSegments: number };
  buildMs: number;
  rounds: number;
  operations: CatalogOperation[];
  rebuild: RebuildTiming[];
  targets: Record<string, { target: string; measured: number; met: boolean }>;
  loadAverage: { start: number; end: number };
}

/** Options of benchCatalog. */
export interface CatalogBenchOptions extends Partial<SyntheticCatalogShape> {
  rounds?: number;
  log?: (line: string) => void;
}

const TARGET_MS = 50;

/** Builds the synthetic catalog in a scratch directory of `home`, times each operation, removes it. */
export async function benchCatalog(home: Home, opts: CatalogBenchOptions = {}): Promise<CatalogBenchResult> {
  const rounds = opts.rounds ?? 7;
  const log = opts.log ?? (() => {});
  const start = loadAverage();
  const dir = fs.mkdtempSync(path.join(home.dir, 'bench-catalog-'));
  try {
    const shape = {
      jobs: opts.jobs ?? DEFAULT_SHAPE.jobs,
      segments: opts.segments ?? DEFAULT_SHAPE.segments,
      cartridges: opts.cartridges ?? DEFAULT_SHAPE.cartridges,
      largeShare: opts.largeShare ?? DEFAULT_SHAPE.largeShare,
    };
    log(`writing a synthetic catalog: ${shape.jobs} jobs, ${shape.segments} segments over ${shape.cartridges} cartridges`);
    const syn = buildSyntheticCatalog(path.join(dir, CATALOG_FILE), shape);
    log(`written in ${(syn.buildMs / 1000).toFixed(1)} s (${(fs.statSync(syn.file).size / 2 ** 20).toFixed(0)} MiB)`);
    const operations = timeOperations(syn, rounds, log);
    // The same libraries in a catalog a tenth the size: a scoped rebuild should not notice the difference.
    const tenth = buildSyntheticCatalog(path.join(dir, 'tenth', CATALOG_FILE), {
      jobs: Math.max(2, Math.round(shape.jobs / 10)),
      segments: Math.max(2, Math.round(shape.segments / 10)),
      cartridges: Math.max(1, Math.round(shape.cartridges / 10)),
      largeShare: shape.largeShare,
    });
    const rebuild = timeRebuilds(syn, rounds, log);
    const rebuildTenth = timeRebuilds(tenth, rounds, log).find((r) => r.cartridges === 10);
    const targets: CatalogBenchResult['targets'] = {};
    for (const o of operations) if (o.name !== 'open, nothing to settle') targets[`${o.name} (ms)`] = { target: `< ${TARGET_MS}`, measured: o.medianMs, met: o.medianMs < TARGET_MS };
    const r10 = rebuild.find((r) => r.cartridges === 10);
    const r100 = rebuild.find((r) => r.cartridges === 100);
    if (r10 && rebuildTenth) {
      const ratio = r10.medianMs / rebuildTenth.medianMs;
      targets['rebuild of 10 cartridges: this catalog / one a tenth the size'] = { target: '<= 2', measured: ratio, met: ratio <= 2 };
    }
    if (r10 && r100) {
      const ratio = r100.medianMs / r10.medianMs;
      targets['rebuild of 100 cartridges / of 10 (linear: 10)'] = { target: '<= 20', measured: ratio, met: ratio <= 20 };
    }
    const scans = operations.filter((o) => o.fullScans.length > 0 && !o.name.startsWith('catalog jobs (all'));
    targets['operations with a full scan of a growing table'] = { target: '0', measured: scans.length, met: scans.length === 0 };
    return {
      benchmark: 'catalog',
      date: new Date().toISOString(),
      machine: describeMachine(),
      shape: {
        jobs: syn.jobs,
        segments: syn.segments,
        cartridges: syn.cartridges,
        libraries: syn.libraries.length,
        typicalJobSegments: countSegments(syn, syn.typicalJob),
        largeJobSegments: countSegments(syn, syn.largeJob),
      },
      buildMs: syn.buildMs,
      rounds,
      operations,
      rebuild: rebuildTenth ? [...rebuild, { ...rebuildTenth, library: `${rebuildTenth.library} (catalog a tenth the size)` }] : rebuild,
      targets,
      loadAverage: { start, end: loadAverage() },
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function countSegments(syn: SyntheticCatalog, job: number): number {
  const c = Catalog.openFile(syn.file);
  try {
    return c.db.prepare(`SELECT count(*) FROM segments s JOIN locations l ON l.id = s.location_id WHERE l.job_id = ?`).pluck().get(job) as number;
  } finally {
    c.close();
  }
}

/** Times `fn` `rounds` times after `setup` (not timed) each round; the first, extra round warms the cache and is dropped. */
function timed(rounds: number, fn: (round: number) => number, setup?: (round: number) => void): { runsMs: number[]; rows: number } {
  const runsMs: number[] = [];
  let rows = 0;
  for (let r = 0; r <= rounds; r++) {
    setup?.(r);
    const t = performance.now();
    rows = fn(r);
    const ms = performance.now() - t;
    if (r > 0) runsMs.push(ms);
  }
  return { runsMs, rows };
}

/** One operation as its command runs it, on an open catalog. */
interface Operation {
  name: string;
  what: string;
  run: (c: Catalog) => number;
  /** Before each round, not timed. */
  setup?: (round: number) => void;
}

/** The user-facing operations, each timed as its command runs it: open the catalog (which settles), run, close. */
function timeOperations(syn: SyntheticCatalog, rounds: number, log: (line: string) => void): CatalogOperation[] {
  const probe = Catalog.openFile(syn.file);
  const large = probe.job(syn.largeJob);
  const typical = probe.job(syn.typicalJob);
  const lastLibrary = syn.libraries.at(-1)!.name;
  const someBarcode = probe.db.prepare(`SELECT barcode FROM media WHERE library = ? ORDER BY slot LIMIT 1`).pluck().get(lastLibrary) as string;
  probe.close();
  // A range starting inside a segment, in the middle of the job.
  const mid = (size: number): number => Math.floor(size / 2 / syn.chunk) * syn.chunk + 4096;
  const range = (size: number): { offset: number; length: number } => ({ offset: mid(size), length: Math.min(1 << 30, size - mid(size)) });
  const typicalSegments = countSegments(syn, syn.typicalJob);
  const newSegments = (): NewSegment[] =>
    Array.from({ length: typicalSegments }, (_, q) => ({
      seq: q,
      barcode: someBarcode,
      fileNumber: 1_000_000 + q,
      firstBlock: 0,
      sourceOffset: q * syn.chunk,
      length: syn.chunk,
      checksum: hex(q),
      writtenAt: new Date().toISOString(),
    }));
  // Dead jobs to settle: done jobs set back to `running` with no process holding their lock.
  const dead = 10;
  const revive = (round: number): void => {
    const c = Catalog.openFile(syn.file);
    try {
      const ids = Array.from({ length: dead }, (_, i) => 1 + round * dead + i);
      c.db.prepare(`UPDATE jobs SET status = 'running', pid = 999999999, ended_at = NULL, error = NULL WHERE id IN (${ids.join(', ')})`).run();
    } finally {
      c.close();
    }
  };
  const ops: Operation[] = [
    { name: 'open, nothing to settle', what: 'Catalog.open + close (every command pays it)', run: () => 0 },
    { name: 'catalog jobs (all, newest first)', what: 'jobs()', run: (c) => c.jobs().length },
    { name: 'catalog jobs --status failed', what: "jobs({ status: 'failed' })", run: (c) => c.jobs({ status: 'failed' }).length },
    { name: 'catalog jobs --target vol7', what: "jobs({ target: 'vol7' })", run: (c) => c.jobs({ target: 'vol7' }).length },
    {
      name: `catalog show (a job of ${typicalSegments} segments)`,
      what: 'job, locations, segments',
      run: (c) => {
        c.job(syn.typicalJob);
        return c.locations(syn.typicalJob).length + c.segments(syn.typicalJob).length;
      },
    },
    {
      name: `plan a 1 GiB range restore (a job of ${typicalSegments} segments)`,
      what: 'planRestore (segmentsCovering)',
      run: (c) => planRestore(c, syn.typicalJob, range(typical.targetSize)).segments.length,
    },
    {
      name: `plan a 1 GiB range restore (a job of ${countSegments(syn, syn.largeJob)} segments)`,
      what: 'planRestore (segmentsCovering)',
      run: (c) => planRestore(c, syn.largeJob, range(large.targetSize)).segments.length,
    },
    {
      name: `add a job of ${typicalSegments} segments`,
      what: 'startJob, addLocation, addSegments, setLocationStatus, finishJob (5 commits, synchronous = FULL)',
      run: (c) => {
        const id = c.startJob({ target: 'bench-new', targetSize: typicalSegments * syn.chunk });
        const loc = c.addLocation(id, { copy: 0, seq: 0, library: lastLibrary, stream: 0 });
        c.addSegments(id, loc, newSegments());
        c.setLocationStatus(loc, 'done');
        c.finishJob(id, 'done');
        return typicalSegments + 1;
      },
    },
    { name: `settle ${dead} dead jobs`, what: 'Catalog.open: settleDeadJobs, settleDeadSchedule', run: () => dead, setup: revive },
  ];
  const out: CatalogOperation[] = [];
  for (const op of ops) {
    const { runsMs, rows } = timed(
      rounds,
      (round) => {
        void round;
        const c = Catalog.openFile(syn.file);
        try {
          return op.run(c);
        } finally {
          c.close();
        }
      },
      op.setup,
    );
    // The plans, from one more run (not timed): the settling an open does, then the operation.
    const c = Catalog.openFile(syn.file);
    let queries: PlannedQuery[];
    try {
      op.setup?.(rounds + 1);
      queries = recordQueries(c, () => {
        c.settleDeadJobs();
        c.settleDeadSchedule();
        op.run(c);
      }).queries;
    } finally {
      c.close();
    }
    const o: CatalogOperation = { name: op.name, what: op.what, medianMs: median(runsMs), bestMs: Math.min(...runsMs), runsMs, rows, fullScans: fullScans(queries) };
    log(`${o.name}: median ${o.medianMs.toFixed(2)} ms (${rows} rows)${o.fullScans.length ? `; full scans: ${o.fullScans.join('; ')}` : ''}`);
    out.push(o);
  }
  return out;
}

/** The scan a rebuild of `library` would make, from the catalog's own rows: every cartridge read through. */
export function scanFromCatalog(catalog: Catalog, library: string): ScannedCartridges {
  const rows = catalog.db
    .prepare(
      `SELECT j.id, j.target, j.target_size AS targetSize, j.mode, j.started_at AS startedAt, j.data_time AS dataTime, j.consistency,
              l.copy, l.seq AS locationSeq, l.library, l.stream,
              s.seq, s.barcode, s.file_number AS fileNumber, s.first_block AS firstBlock, s.source_offset AS sourceOffset, s.length, s.checksum, s.written_at AS writtenAt
       FROM media m JOIN segments s ON s.barcode = m.barcode JOIN locations l ON l.id = s.location_id JOIN jobs j ON j.id = l.job_id
       WHERE m.library = ?`,
    )
    .all(library) as Array<CartridgeIndexEntry['job'] & CartridgeIndexEntry['segment'] & { copy: number; locationSeq: number; library: string; stream: number }>;
  const entries: CartridgeIndexEntry[] = rows.map((r) => ({
    format: INDEX_FORMAT,
    job: { id: r.id, target: r.target, targetSize: r.targetSize, mode: r.mode, startedAt: r.startedAt, dataTime: r.dataTime, consistency: r.consistency },
    location: { copy: r.copy, seq: r.locationSeq, library: r.library, stream: r.stream },
    segment: { seq: r.seq, barcode: r.barcode, fileNumber: r.fileNumber, firstBlock: r.firstBlock, sourceOffset: r.sourceOffset, length: r.length, checksum: r.checksum, writtenAt: r.writtenAt },
  }));
  const barcodes = catalog.media(library).map((m) => m.barcode);
  return { libraries: [library], scoped: true, entries, read: new Set(barcodes), partial: new Set(), barcodes };
}

/**
 * The catalog phase of `catalog rebuild --library L` (rebuildRows, in a transaction rolled
 * back after each round) for the libraries of 1, 10 and 100 cartridges, with the scan's
 * result made from the catalog's own rows. Not timed: reading the cartridges and their
 * media headers, which cost per cartridge read by construction.
 */
function timeRebuilds(syn: SyntheticCatalog, rounds: number, log: (line: string) => void): RebuildTiming[] {
  const out: RebuildTiming[] = [];
  const c = Catalog.openFile(syn.file);
  try {
    for (const lib of syn.libraries.filter((l) => /^lib-\d+$/.test(l.name))) {
      const scan = scanFromCatalog(c, lib.name);
      const { runsMs } = timed(rounds, () => {
        c.db.exec('BEGIN IMMEDIATE');
        try {
          if (c.jobs({ status: 'running' }).length > 0) throw new Error('a job is running');
          return rebuildRows(c, scan, [], () => {});
        } finally {
          c.db.exec('ROLLBACK');
        }
      });
      const r: RebuildTiming = { library: lib.name, cartridges: lib.cartridges, segments: scan.entries.length, catalogSegments: syn.segments, medianMs: median(runsMs), runsMs };
      log(`rebuild --library ${lib.name} (${lib.cartridges} cartridges, ${r.segments} of ${syn.segments} segments): median ${r.medianMs.toFixed(2)} ms`);
      out.push(r);
    }
  } finally {
    c.close();
  }
  return out;
}
