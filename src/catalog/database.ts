/** Opens the catalog database: SQLite in WAL mode with foreign keys, migrated to the newest schema. */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { PlexusError } from '../errors.js';
import { MIGRATIONS } from './migrations.js';

/** A handle on the catalog database. */
export type Db = Database.Database;

/** The file name of the catalog in a storage home. */
export const CATALOG_FILE = 'catalog.db';

/** Opens (creating if needed) the catalog at `file` and applies pending migrations. */
export function openDatabase(file: string): Db {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  let db: Db;
  try {
    db = new Database(file);
    // WAL lets readers (catalog jobs, a restore) run while a backup writes; several
    // processes share the file, so a writer waits for the lock rather than failing.
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 10000');
    db.pragma('foreign_keys = ON');
    db.pragma('synchronous = FULL');
  } catch (e) {
    throw new PlexusError('E_CORRUPT', `cannot open the catalog ${file}: ${(e as Error).message}`, { cause: e });
  }
  try {
    migrate(db);
  } catch (e) {
    db.close();
    if (e instanceof PlexusError) throw e;
    throw new PlexusError('E_CORRUPT', `cannot migrate the catalog ${file}: ${(e as Error).message}`, { cause: e });
  }
  return db;
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
