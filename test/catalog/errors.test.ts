/** No SqliteError or raw fs error crosses the library; bugs stay bugs (E_INTERNAL), never E_IO. */

import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runBackup } from '../../src/backup/backup.js';
import { createLibrary } from '../../src/backup/libraries.js';
import { restoreJob } from '../../src/backup/restore.js';
import { Catalog } from '../../src/catalog/catalog.js';
import { reportFailure } from '../../src/cli/main.js';
import { asPlexusError, fromSqlite, PlexusError } from '../../src/errors.js';
import { Home } from '../../src/home/home.js';
import { Library } from '../../src/tape/library.js';
import { VolumeStore } from '../../src/volumes/store.js';
import { CLI, scratchDir } from '../helpers/home.js';

let scratch: ReturnType<typeof scratchDir>;
let file: string;
beforeEach(() => {
  scratch = scratchDir();
  file = path.join(scratch.dir, 'catalog.db');
});
afterEach(() => scratch.cleanup());

const coded = (code: string, ...mentions: string[]) =>
  expect.objectContaining({ name: 'PlexusError', code, message: expect.stringMatching(new RegExp(mentions.map((m) => m.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*'))) });

describe('catalog errors', () => {
  it('a catalog file that is not a database: E_CORRUPT naming it', () => {
    fs.writeFileSync(file, crypto.randomBytes(8192));
    expect(() => Catalog.openFile(file)).toThrow(coded('E_CORRUPT', file));
  });

  it('a catalog whose pages are damaged: E_CORRUPT from the query that meets them', () => {
    const c = Catalog.openFile(file);
    c.putLibrary({ name: 'lib', dir: '/x', slots: 1, drives: 1, cartridgeSize: 1 << 20, createdAt: 'now' });
    c.transaction(() => {
      for (let i = 0; i < 2000; i++) c.addSchedule('2030-01-01T00:00:00.000Z', `volume-${i}-${'x'.repeat(40)}`);
    });
    c.db.pragma('wal_checkpoint(TRUNCATE)');
    c.close();
    const bytes = fs.readFileSync(file);
    const page = 4096;
    // Every page but the first (the header and schema) is overwritten.
    for (let at = page; at < bytes.length; at += 1) bytes[at] = (at * 7919) & 0xff;
    fs.writeFileSync(file, bytes);
    let err: unknown;
    try {
      const d = Catalog.openFile(file);
      try {
        d.schedule();
      } finally {
        d.close();
      }
    } catch (e) {
      err = e;
    }
    expect(err).toEqual(coded('E_CORRUPT', file));
    expect((err as PlexusError).cause).toMatchObject({ name: 'SqliteError' });
  });

  it('a catalog another process holds the write lock of: E_BUSY, after the busy timeout', () => {
    Catalog.openFile(file).close();
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    try {
      const c = Catalog.openFile(file, { busyTimeoutMs: 50 });
      try {
        expect(() => c.addSchedule('2030-01-01T00:00:00.000Z', 'v')).toThrow(coded('E_BUSY', file, 'write lock'));
        // Reading still works (WAL), and a transaction's BEGIN is mapped too.
        expect(c.schedule()).toEqual([]);
        expect(() => c.transaction(() => c.addSchedule('2030-01-01T00:00:00.000Z', 'v'))).toThrow(coded('E_BUSY'));
      } finally {
        c.close();
      }
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
  });

  it('constraints: a duplicate key is E_EXISTS, a missing reference E_STATE', () => {
    const c = Catalog.openFile(file);
    try {
      c.putLibrary({ name: 'lib', dir: '/x', slots: 1, drives: 1, cartridgeSize: 1 << 20, createdAt: 'now' });
      c.putMedia({ barcode: 'LIB001L9', library: 'lib', slot: 0, state: 'scratch', capacity: 1 << 20, bytes: 0 });
      const job = c.startJob({ target: 'v', targetSize: 1 });
      const loc = c.addLocation(job, { copy: 0, seq: 0, library: 'lib', stream: 0 });
      expect(() => c.addLocation(job, { copy: 0, seq: 0, library: 'lib', stream: 0 })).toThrow(coded('E_EXISTS', 'UNIQUE'));
      expect(() => c.addSegments(job, loc, [{ seq: 0, barcode: 'NOPE00L9', fileNumber: 0, firstBlock: 0, sourceOffset: 0, length: 1, checksum: 'c', writtenAt: 'now' }])).toThrow(
        coded('E_STATE', 'FOREIGN KEY'),
      );
      c.finishJob(job, 'failed', 'test');
    } finally {
      c.close();
    }
  });

  it('a catalog in a directory that cannot be made: a coded error naming it, not a raw errno error', () => {
    const blocker = path.join(scratch.dir, 'not-a-dir');
    fs.writeFileSync(blocker, '');
    expect(() => Catalog.openFile(path.join(blocker, 'catalog.db'))).toThrow(coded('E_EXISTS', blocker));
    fs.mkdirSync(path.join(scratch.dir, 'dir.db'));
    expect(() => Catalog.openFile(path.join(scratch.dir, 'dir.db'))).toThrow(expect.objectContaining({ name: 'PlexusError', code: expect.stringMatching(/^E_(IO|INVALID)$/) }));
  });

  it('maps each SQLite family', () => {
    const sq = (code: string): string => (fromSqlite(Object.assign(new Error('m'), { name: 'SqliteError', code }), 'x') as PlexusError).code;
    expect(['SQLITE_BUSY', 'SQLITE_LOCKED_SHAREDCACHE', 'SQLITE_CORRUPT_INDEX', 'SQLITE_NOTADB', 'SQLITE_FULL', 'SQLITE_READONLY_DBMOVED', 'SQLITE_CANTOPEN', 'SQLITE_IOERR_FSYNC'].map(sq)).toEqual([
      'E_BUSY',
      'E_BUSY',
      'E_CORRUPT',
      'E_CORRUPT',
      'E_NOSPC',
      'E_ACCESS',
      'E_IO',
      'E_IO',
    ]);
    expect(['SQLITE_CONSTRAINT_PRIMARYKEY', 'SQLITE_CONSTRAINT_CHECK', 'SQLITE_ERROR', 'SQLITE_MISUSE'].map(sq)).toEqual(['E_EXISTS', 'E_STATE', 'E_INTERNAL', 'E_INTERNAL']);
  });
});

describe('bugs stay bugs', () => {
  it('a TypeError, RangeError or failed assertion is E_INTERNAL, never E_IO; system errors keep their errno code', () => {
    for (const bug of [new TypeError('x is undefined'), new RangeError('bad length'), Object.assign(new Error('assert'), { name: 'AssertionError', code: 'ERR_ASSERTION' }), 'a string']) {
      const e = asPlexusError(bug);
      expect(e.code).toBe('E_INTERNAL');
      expect(e.cause).toBe(bug);
    }
    expect(asPlexusError(Object.assign(new Error("ENOSPC: no space left on device, write '/x'"), { code: 'ENOSPC' })).code).toBe('E_NOSPC');
    expect(asPlexusError(new Error('E_RANGE: volume a: past the end')).code).toBe('E_RANGE');
  });

  it('a bug inside a backup job is recorded and thrown as E_INTERNAL, the job settled', async () => {
    const home = Home.open(path.join(scratch.dir, 'home'));
    const c = Catalog.open(home);
    createLibrary(home, c, 'lib', { slots: 1, drives: 1, cartridgeSize: 4 << 20, blockSize: 64 << 10 });
    c.close();
    new VolumeStore(home).create('v', { size: 1 << 20 });
    const drive = await Library.open(home, 'lib').claimDrive();
    try {
      const err = await runBackup(home, 'v', {
        onLog: () => {
          throw new TypeError("Cannot read properties of undefined (reading 'x')");
        },
      }).catch((e: unknown) => e);
      expect(err).toEqual(coded('E_INTERNAL', 'backup job 1', 'TypeError'));
    } finally {
      drive.release();
    }
    const after = Catalog.open(home);
    expect(after.job(1)).toMatchObject({ status: 'failed', error: expect.stringMatching(/^E_INTERNAL: TypeError/) });
    after.close();
    // The same in a restore: nothing is left behind.
    const to = path.join(scratch.dir, 'out');
    await runBackup(home, 'v');
    const r = await restoreJob(home, 2, to, {
      onLog: () => {
        throw new RangeError('index out of range');
      },
    }).catch((e: unknown) => e);
    expect(r).toEqual(coded('E_INTERNAL', 'RangeError'));
    expect(fs.existsSync(`${to}.plexus-partial`)).toBe(false);
  });

  it('the CLI prints a bug as an internal error to report and exits 70; E_CANCELLED exits 130', () => {
    const lines: string[] = [];
    const write = (s: string): void => void lines.push(s);
    const saved = process.env.PLEXUS_DEBUG;
    delete process.env.PLEXUS_DEBUG;
    try {
      expect(reportFailure(new TypeError('x is not a function'), write)).toBe(70);
      expect(lines).toEqual(['plexus: internal error: TypeError: x is not a function (E_INTERNAL); please report it (PLEXUS_DEBUG=1 prints the stack)\n']);
      lines.length = 0;
      process.env.PLEXUS_DEBUG = '1';
      expect(reportFailure(new TypeError('y'), write)).toBe(70);
      expect(lines[1]).toMatch(/^TypeError: y\n\s+at /);
      lines.length = 0;
      delete process.env.PLEXUS_DEBUG;
      expect(reportFailure(new PlexusError('E_CANCELLED', 'restore of job 1 cancelled'), write)).toBe(130);
      expect(reportFailure(new PlexusError('E_NOENT', 'no volume v'), write)).toBe(1);
      expect(lines).toEqual(['plexus: restore of job 1 cancelled (E_CANCELLED)\n', 'plexus: no volume v (E_NOENT)\n']);
    } finally {
      if (saved === undefined) delete process.env.PLEXUS_DEBUG;
      else process.env.PLEXUS_DEBUG = saved;
    }
  });
});

describe('a home the process may not write', () => {
  it('a read-only home: the CLI gives one coded line (E_ACCESS), not a SqliteError', () => {
    const home = path.join(scratch.dir, 'home');
    const run = (...args: string[]) =>
      spawnSync(process.execPath, [CLI, '--home', home, ...args], {
        encoding: 'utf8',
        env: { ...process.env, PLEXUS_HOME: '' },
        // root ignores file modes: run as nobody to meet them.
        ...(process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {}),
      });
    for (const args of [['init'], ['volume', 'create', 'v', '--size', '1M'], ['backup', 'schedule', 'add', 'v', '--at', 'now']]) {
      expect(spawnSync(process.execPath, [CLI, '--home', home, ...args], { env: { ...process.env, PLEXUS_HOME: '' } }).status).toBe(0);
    }
    fs.chmodSync(scratch.dir, 0o755);
    const chmodTree = (p: string, mode: (dir: boolean) => number): void => {
      const dir = fs.statSync(p).isDirectory();
      if (dir) for (const f of fs.readdirSync(p)) chmodTree(path.join(p, f), mode);
      fs.chmodSync(p, mode(dir));
    };
    chmodTree(home, (dir) => (dir ? 0o555 : 0o444));
    try {
      for (const args of [
        ['catalog', 'jobs'],
        ['backup', 'schedule', 'add', 'v', '--at', 'now'],
      ]) {
        const r = run(...args);
        expect(r.status, r.stderr).toBe(1);
        expect(r.stderr).toMatch(new RegExp(`^plexus: catalog ${home.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/catalog.db: .*readonly.* \\(E_ACCESS\\)\n$`));
      }
    } finally {
      chmodTree(home, (dir) => (dir ? 0o755 : 0o644));
    }
  });
});
