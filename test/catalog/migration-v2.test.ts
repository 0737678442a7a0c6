import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { schemaVersion } from '../../src/catalog/database.js';
import { MIGRATIONS } from '../../src/catalog/migrations.js';
import { scratchDir } from '../helpers/home.js';

let scratch: ReturnType<typeof scratchDir>;
beforeEach(() => (scratch = scratchDir()));
afterEach(() => scratch.cleanup());

describe('catalog migration 2 (backup manager)', () => {
  it('migrates a version-1 catalog: its rows stay, the resource tables and the default topology appear', () => {
    const file = path.join(scratch.dir, 'catalog.db');
    const v1 = new Database(file);
    v1.exec(MIGRATIONS.find((m) => m.version === 1)!.sql);
    v1.pragma('user_version = 1');
    v1.prepare(`INSERT INTO libraries VALUES ('lib', '/x', 2, 1, 1048576, 'then')`).run();
    v1.prepare(`INSERT INTO media VALUES ('LIB001L9', 'lib', 0, 'filling', 1048576, 4096, 'then')`).run();
    v1.prepare(`INSERT INTO jobs (target, target_size, started_at, data_time, status, bytes) VALUES ('db', 4096, 'then', 'then', 'done', 4096)`).run();
    v1.close();

    const catalog = Catalog.openFile(file);
    try {
      expect(schemaVersion(catalog.db)).toBe(MIGRATIONS.at(-1)!.version);
      expect(catalog.jobs().map((j) => [j.id, j.target, j.status])).toEqual([[1, 'db', 'done']]);
      expect(catalog.media().map((m) => [m.barcode, m.state, m.bytes])).toEqual([['LIB001L9', 'filling', 4096]]);
      const rows = catalog.db.prepare(`SELECT name, kind, state FROM resources ORDER BY kind, name`).all();
      expect(rows).toEqual([
        { name: 'xcopy0', kind: 'copy-device', state: 'available' },
        { name: 'xcopy1', kind: 'copy-device', state: 'available' },
        { name: 'server0', kind: 'server', state: 'available' },
        { name: 'server1', kind: 'server', state: 'available' },
        { name: 'fc0', kind: 'switch', state: 'available' },
        { name: 'fc1', kind: 'switch', state: 'available' },
      ]);
      expect(catalog.db.prepare(`SELECT endpoint FROM links WHERE switch = 'fc0' ORDER BY endpoint`).pluck().all()).toEqual(['server0', 'storage', 'xcopy0']);
      // The schema checks what it documents.
      const bad = (sql: string): void => expect(() => catalog.db.exec(sql)).toThrow(/CHECK|FOREIGN KEY/);
      bad(`INSERT INTO resources (name, kind) VALUES ('t', 'tape')`);
      bad(`INSERT INTO resources (name, kind, state) VALUES ('t', 'server', 'busy')`);
      bad(`INSERT INTO resources (name, kind, state) VALUES ('t', 'server', 'in-use')`);
      bad(`INSERT INTO faults (target, kind, created_at) VALUES ('nope', 'hang', 'now')`);
      bad(`INSERT INTO faults (target, kind, created_at) VALUES ('fc0', 'fail-after', 'now')`);
      bad(`INSERT INTO faults (target, kind, after_bytes, created_at) VALUES ('fc0', 'unavailable', 5, 'now')`);
      bad(`INSERT INTO links (switch, endpoint) VALUES ('nope', 'storage')`);
      // Version 3: a hang may wait for a byte count.
      catalog.db.exec(`INSERT INTO faults (target, kind, after_bytes, created_at) VALUES ('fc1', 'hang', 4096, 'now')`);
      // Removing a switch takes its links and faults with it.
      catalog.db.exec(`INSERT INTO faults (target, kind, created_at) VALUES ('fc0', 'hang', 'now'); DELETE FROM resources WHERE name = 'fc0'`);
      expect(catalog.db.prepare(`SELECT count(*) FROM links WHERE switch = 'fc0'`).pluck().get()).toBe(0);
      expect(catalog.db.prepare(`SELECT count(*) FROM faults WHERE target = 'fc0'`).pluck().get()).toBe(0);
    } finally {
      catalog.close();
    }
    // Reopening applies nothing twice.
    const again = Catalog.openFile(file);
    expect(schemaVersion(again.db)).toBe(MIGRATIONS.at(-1)!.version);
    again.close();
  });
});
