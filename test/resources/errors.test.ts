/** Resource operations fail with a coded PlexusError naming the path, never a raw fs or SQLite error. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createLibrary, removeLibrary } from '../../src/backup/libraries.js';
import { Catalog } from '../../src/catalog/catalog.js';
import { clearFaults, injectFault, listFaults } from '../../src/resources/faults.js';
import { Inventory, markUnavailable } from '../../src/resources/inventory.js';
import { backupManagerLogFile } from '../../src/resources/log.js';
import { releaseAll, secureStreams } from '../../src/resources/streams.js';
import { Library } from '../../src/tape/library.js';
import { thrown } from '../helpers/errors.js';
import { job, library, notAvailable, resources, useHome, withInventory } from './helpers.js';

const h = useHome();
const dist = (p: string): string => pathToFileURL(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist', p)).href;
const reEscape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A coded PlexusError naming `file`. */
const coded = (code: string, file: string) => expect.objectContaining({ name: 'PlexusError', code, message: expect.stringMatching(reEscape(file)) });

describe('resource operations whose log cannot be written', () => {
  it('change nothing and say why: E_NOENT naming the log file (HOME/logs is a file)', async () => {
    library(h.home, 'lib', 2);
    const log = backupManagerLogFile(h.home);
    fs.rmSync(path.dirname(log), { recursive: true, force: true });
    fs.writeFileSync(path.dirname(log), 'not a directory');

    expect(await thrown(() => withInventory(h.home, (inv) => inv.setState('fc0', 'unavailable')))).toEqual(coded('E_NOENT', log));
    expect(await thrown(() => injectFault(h.home, 'xcopy0', { hang: true }))).toEqual(coded('E_NOENT', log));
    expect(await thrown(() => withInventory(h.home, (inv) => inv.add('server', 'server9')))).toEqual(coded('E_NOENT', log));
    expect(await thrown(() => withInventory(h.home, (inv) => inv.remove('server1')))).toEqual(coded('E_NOENT', log));
    expect(await thrown(() => secureStreams(h.home, { jobId: job(h.home, 1), count: 2 }))).toEqual(coded('E_NOENT', log));
    // Nothing changed: no state, no fault, no resource, no reservation, no lock.
    expect(notAvailable(h.home)).toEqual([]);
    expect(listFaults(h.home)).toEqual([]);
    expect(resources(h.home).has('server9')).toBe(false);
    expect(resources(h.home).has('server1')).toBe(true);
    expect(
      Library.open(h.home, 'lib')
        .drives()
        .filter((d) => d.busy),
    ).toEqual([]);

    // A log line of an outcome already settled is best effort: a release still releases.
    fs.rmSync(path.dirname(log));
    const streams = await secureStreams(h.home, { jobId: job(h.home, 1), count: 2 });
    fs.rmSync(path.dirname(log), { recursive: true });
    fs.writeFileSync(path.dirname(log), 'not a directory');
    expect(markUnavailable(h.home, [streams[0]!.mover.name], 'test')).toEqual([streams[0]!.mover.name]);
    releaseAll(streams);
    expect(notAvailable(h.home)).toEqual([`${streams[0]!.mover.name}:unavailable`]);
    expect(clearFaults(h.home)).toBe(0);
  });

  it("a dead job's reservation is released even while the log cannot be written (recovery is not held hostage)", async () => {
    library(h.home, 'lib', 1);
    withInventory(h.home, (inv) => inv.catalog.transaction(() => inv.reserve([{ name: 'server0', kind: 'server' }], { jobId: 77, stream: 0, pid: process.pid })));
    const log = backupManagerLogFile(h.home);
    fs.rmSync(path.dirname(log), { recursive: true, force: true });
    fs.writeFileSync(path.dirname(log), '');
    // Job 77 holds no lock: its reservation is stale, and opening the inventory frees it.
    expect(withInventory(h.home, (inv) => inv.releasedStale)).toBe(1);
    const look = Inventory.open(h.home, { sync: false });
    expect(look.row('server0')).toMatchObject({ state: 'available', jobId: null });
    look.close();
    // A change the operator asks for is still refused while it cannot be logged.
    expect(await thrown(() => injectFault(h.home, 'server0', { unavailable: true }))).toEqual(coded('E_NOENT', log));
    fs.rmSync(path.dirname(log));
  });
});

describe('libraries', () => {
  it('createLibrary and removeLibrary: a coded error naming the path, not a raw errno error', async () => {
    const dir = path.join(h.home.dir, 'libraries');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.writeFileSync(dir, 'not a directory');
    const c = Catalog.open(h.home);
    try {
      const e = await thrown(() => createLibrary(h.home, c, 'lib', { slots: 1, drives: 1, cartridgeSize: 1 << 20, blockSize: 4096 }));
      expect(e).toEqual(expect.objectContaining({ name: 'PlexusError', code: expect.stringMatching(/^E_(NOENT|EXISTS)$/), message: expect.stringMatching(reEscape(dir)) }));
      fs.rmSync(dir);
      createLibrary(h.home, c, 'lib', { slots: 1, drives: 1, cartridgeSize: 1 << 20, blockSize: 4096 });
      // A library directory that cannot be read: E_NOENT/E_ACCESS naming it, not a raw error.
      fs.rmSync(path.join(dir, 'lib', 'library.json'));
      fs.mkdirSync(path.join(dir, 'lib', 'library.json'));
      expect(await thrown(() => removeLibrary(h.home, c, 'lib'))).toEqual(expect.objectContaining({ name: 'PlexusError', code: expect.stringMatching(/^E_[A-Z]+$/) }));
    } finally {
      c.close();
    }
  });
});

/** Runs `script` (a module using dist/) as nobody when root, so file modes apply; returns its JSON line. */
function asNobody(script: string): unknown {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, HOME_DIR: h.home.dir },
    ...(process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {}),
  });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

describe('a home the process may not read', () => {
  it('an unreadable libraries directory: E_ACCESS naming it from every inventory entry point', () => {
    library(h.home, 'lib', 1);
    // The scratch directories are the test's; nobody needs to reach the home in them.
    fs.chmodSync(path.dirname(h.home.dir), 0o755);
    const chmodTree = (p: string, mode: (dir: boolean) => number): void => {
      const dir = fs.statSync(p).isDirectory();
      if (dir) for (const f of fs.readdirSync(p)) chmodTree(path.join(p, f), mode);
      fs.chmodSync(p, mode(dir));
    };
    chmodTree(h.home.dir, (dir) => (dir ? 0o777 : 0o666));
    const libs = path.join(h.home.dir, 'libraries');
    fs.chmodSync(libs, 0o000);
    try {
      const out = asNobody(`
        import { Home } from ${JSON.stringify(dist('home/home.js'))};
        import { Inventory } from ${JSON.stringify(dist('resources/inventory.js'))};
        import { injectFault, listFaults } from ${JSON.stringify(dist('resources/faults.js'))};
        import { secureStreams } from ${JSON.stringify(dist('resources/streams.js'))};
        const home = Home.open(process.env.HOME_DIR);
        const out = [];
        for (const f of [() => Inventory.open(home), () => injectFault(home, 'fc0', { hang: true }), () => listFaults(home), () => secureStreams(home, { jobId: 1 })]) {
          try { await f(); out.push('no error'); } catch (e) { out.push({ name: e.name, code: e.code, message: e.message }); }
        }
        process.stdout.write(JSON.stringify(out));
      `);
      expect(out).toEqual(Array(4).fill(expect.objectContaining({ name: 'PlexusError', code: 'E_ACCESS', message: expect.stringMatching(reEscape(libs)) })));
    } finally {
      fs.chmodSync(libs, 0o755);
    }
  });
});
