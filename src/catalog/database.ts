/**
 * Opens the catalog database: SQLite in WAL mode with foreign keys, migrated to the
 * newest schema. The handle maps every SqliteError to a PlexusError naming the catalog
 * (src/errors.ts fromSqlite), so no SQLite error crosses the library's boundary.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { fromSqlite, fromSystem, PlexusError } from '../errors.js';
import { MIGRATIONS } from './migrations.js';

/** A handle on the catalog database. */
export type Db = Database.Database;

/** The file name of the catalog in a storage home. */
export const CATALOG_FILE = 'catalog.db';

/** How long a writer waits for another process's write lock, by default. */
export const BUSY_TIMEOUT_MS = 10_000;

/** Options of openDatabase. */
export interface OpenDatabaseOptions {
  /** How long a writer waits for another process's write lock (default 10 s). */
  busyTimeoutMs?: number;
}

/** Opens (creating if needed) the catalog at `file` and applies pending migrations. */
export function openDatabase(file: string, opts: OpenDatabaseOptions = {}): Db {
  const what = `catalog ${file}`;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
  } catch (e) {
    throw fromSystem(e, path.dirname(file));
  }
  let raw: Db;
  try {
    raw = new Database(file);
  } catch (e) {
    throw openFailure(e, file);
  }
  const db = mapErrors(raw, what);
  try {
    // WAL lets readers (catalog jobs, a restore) run while a backup writes; several
    // processes share the file, so a writer waits for the lock rather than failing.
    db.pragma('journal_mode = WAL');
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? BUSY_TIMEOUT_MS))}`);
    db.pragma('foreign_keys = ON');
    db.pragma('synchronous = FULL');
    migrate(db);
  } catch (e) {
    raw.close();
    if (e instanceof PlexusError && e.code === 'E_CORRUPT' && !e.message.includes(file)) {
      throw new PlexusError('E_CORRUPT', `${what}: ${e.message}`, { cause: e });
    }
    throw e;
  }
  return db;
}

/** Why a catalog file could not be opened: the directory's or file's own errno when there is one. */
function openFailure(e: unknown, file: string): unknown {
  for (const p of [file, path.dirname(file)]) {
    try {
      if (fs.existsSync(p)) fs.accessSync(p, fs.constants.R_OK | fs.constants.W_OK);
    } catch (err) {
      return fromSystem(err, p);
    }
  }
  return fromSqlite(e, `catalog ${file}`);
}

/** A method of a better-sqlite3 object: its SqliteErrors become PlexusErrors. */
type AnyFn = (...args: unknown[]) => unknown;

/**
 * Wraps a better-sqlite3 database so that every call (prepare, exec, pragma, transaction
 * functions, statements' run/get/all/iterate) maps SqliteError with fromSqlite. Objects
 * the calls return (statements, transaction functions) are wrapped the same way.
 */
function mapErrors<T extends object>(target: T, what: string): T {
  const cache = new WeakMap<object, unknown>();
  const wrap = (value: unknown, self: object): unknown => {
    if (value === self) return proxy;
    if (value instanceof Database || (value !== null && typeof value === 'object' && value.constructor?.name === 'Statement')) {
      return mapErrors(value as object, what);
    }
    if (typeof value === 'function') return wrapFn(value as AnyFn, undefined);
    if (value !== null && typeof value === 'object' && typeof (value as Iterator<unknown>).next === 'function') return wrapIterator(value as Iterator<unknown>);
    return value;
  };
  const call = (fn: AnyFn, self: unknown, args: unknown[]): unknown => {
    try {
      return wrap(fn.apply(self, args), self as object);
    } catch (e) {
      throw fromSqlite(e, what);
    }
  };
  // A transaction function (db.transaction(fn)) and its .deferred/.immediate/.exclusive variants.
  const wrapFn = (fn: AnyFn, self: unknown): AnyFn => {
    const known = cache.get(fn);
    if (known) return known as AnyFn;
    const w = function (this: unknown, ...args: unknown[]): unknown {
      return call(fn, self ?? this, args);
    };
    // The variants refer to one another: cache first.
    cache.set(fn, w);
    for (const k of ['deferred', 'immediate', 'exclusive', 'default'] as const) {
      const v = (fn as unknown as Record<string, unknown>)[k];
      if (typeof v === 'function') Object.defineProperty(w, k, { value: wrapFn(v as AnyFn, undefined) });
    }
    return w;
  };
  const wrapIterator = (it: Iterator<unknown>): Iterator<unknown> =>
    ({
      next: (...a: []) => {
        try {
          return it.next(...a);
        } catch (e) {
          throw fromSqlite(e, what);
        }
      },
      return: (v?: unknown) => it.return?.(v) ?? { done: true, value: v },
      [Symbol.iterator]() {
        return this;
      },
    }) as Iterator<unknown>;
  const proxy: T = new Proxy(target, {
    get(t, key) {
      const v = Reflect.get(t, key, t) as unknown;
      if (typeof v !== 'function' || key === 'constructor') return v;
      return (...args: unknown[]) => call(v as AnyFn, t, args);
    },
  });
  return proxy;
}

/** The schema version of an open catalog. */
export function schemaVersion(db: Db): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/** Applies every migration newer than the database, each in its own transaction. */
function migrate(db: Db): void {
  const newest = MIGRATIONS.at(-1)?.version ?? 0;
  const current = schemaVersion(db);
  if (current > newest) {
    throw new PlexusError('E_CORRUPT', `the catalog has schema version ${current}, newer than this Plexus knows (${newest})`);
  }
  for (const m of MIGRATIONS) {
    if (m.version <= current) continue;
    // IMMEDIATE takes the write lock first, so two processes opening a new catalog at
    // once cannot both apply the same migration.
    db.transaction(() => {
      if (schemaVersion(db) >= m.version) return;
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    }).immediate();
  }
}
