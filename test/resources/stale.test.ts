import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { Inventory } from '../../src/resources/inventory.js';
import { Library } from '../../src/tape/library.js';
import { VolumeStore } from '../../src/volumes/store.js';
import { job, library, notAvailable, resources, useHome, withInventory } from './helpers.js';

const h = useHome();
const dist = (p: string): string => pathToFileURL(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist', p)).href;

/** A real process that secures two streams, says so, and waits to be killed. */
const CHILD = `
import { Catalog } from ${JSON.stringify(dist('catalog/catalog.js'))};
import { Home } from ${JSON.stringify(dist('home/home.js'))};
import { secureStreams } from ${JSON.stringify(dist('resources/streams.js'))};
const home = Home.open(process.env.HOME_DIR);
const jobId = Catalog.open(home).startJob({ target: 'v', targetSize: 0 });
const streams = await secureStreams(home, { jobId, count: 2 });
process.stdout.write(JSON.stringify(streams.flatMap((s) => s.resources)) + '\\n');
setInterval(() => {}, 1000);
`;

/**
 * A real chunked backup that, once its streams are secured and its first bytes moved,
 * says so and blocks for good inside its progress callback (holding its job lock, its
 * drives, cartridges and reservations) until it is killed.
 */
const CHUNKED = `
import { Home } from ${JSON.stringify(dist('home/home.js'))};
import { runBackup } from ${JSON.stringify(dist('backup/backup.js'))};
let told = false;
runBackup(Home.open(process.env.HOME_DIR), 'v', {
  mode: 'chunked',
  chunk: 64 << 10,
  onProgress: () => {
    if (told) return;
    told = true;
    process.stdout.write('secured\\n', () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0));
  },
}).catch((e) => { process.stderr.write(String(e)); process.exit(1); });
`;

/** Spawns a module script with HOME_DIR set; resolves once it printed a line. */
async function started(script: string, home: string): Promise<{ child: ReturnType<typeof spawn>; line: string; exited: Promise<unknown> }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, HOME_DIR: home }, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise((r) => child.once('exit', r));
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')));
    });
    child.once('exit', () => reject(new Error(`the child exited before it was ready: ${stderr}`)));
  });
  return { child, line, exited };
}

/** A pid no process has (one that has just exited). */
async function deadPid(): Promise<number> {
  const p = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await new Promise((r) => p.once('exit', r));
  return p.pid!;
}

/** The reservation rows (name, job, pid) of every held resource. */
function held(home: typeof h.home): Array<{ name: string; jobId: number; pid: number }> {
  const c = Catalog.open(home);
  try {
    return c.db.prepare(`SELECT name, job_id AS jobId, pid FROM resources WHERE job_id IS NOT NULL ORDER BY name`).all() as Array<{ name: string; jobId: number; pid: number }>;
  } finally {
    c.close();
  }
}

/** Sets the pid every reservation records. */
function setPids(home: typeof h.home, pid: number): void {
  const c = Catalog.open(home);
  try {
    c.db.prepare(`UPDATE resources SET pid = ? WHERE job_id IS NOT NULL`).run(pid);
  } finally {
    c.close();
  }
}

describe('reservations live with their job (its kernel lock), not with a pid', () => {
  it("a live job's reservations stay whatever pid they name; a SIGKILLed one's are released under a reused pid", async () => {
    library(h.home, 'lib', 2, 4);
    await new VolumeStore(h.home).create('v', { size: 1 << 20 }).fill(0, 1 << 20, { seed: 3 });
    const { child, exited } = await started(CHUNKED, h.home.dir);
    try {
      const before = held(h.home);
      // Two streams: a copy device, a drive, a cartridge and a switch each.
      expect(before).toHaveLength(8);
      const job = before[0]!.jobId;
      expect(before.every((r) => r.jobId === job && r.pid === child.pid)).toBe(true);

      // The job lives (it holds its lock): a pid that names no process changes nothing.
      setPids(h.home, await deadPid());
      expect(withInventory(h.home, (inv) => inv.releasedStale)).toBe(0);
      expect(held(h.home).map((r) => r.name)).toEqual(before.map((r) => r.name));

      child.kill('SIGKILL');
      await exited;
      // Its pid went to a live process (this one), and another backup now uses both drives
      // (a single-stream backup claims drives without the inventory).
      setPids(h.home, process.pid);
      const lib = Library.open(h.home, 'lib');
      const claims = [await lib.claimDrive({ timeoutMs: 0 }), await lib.claimDrive({ timeoutMs: 0 })];
      try {
        const inv = Inventory.open(h.home);
        try {
          expect(inv.releasedStale).toBe(8);
          expect(inv.rows().filter((r) => r.jobId !== null || (r.state === 'in-use' && r.kind !== 'drive'))).toEqual([]);
        } finally {
          inv.close();
        }
        const c = Catalog.open(h.home);
        expect(c.findJob(job)).toMatchObject({ status: 'incomplete' });
        c.close();
      } finally {
        for (const cl of claims) cl.release();
      }
      expect(notAvailable(h.home)).toEqual([]);
      expect(fs.readFileSync(path.join(h.home.dir, 'logs', 'backup-manager.log'), 'utf8')).toMatch(
        new RegExp(`job ${job}: released 4 resources of stream 1 left by process ${process.pid} \\(its job is no longer running\\)`),
      );
    } finally {
      child.kill('SIGKILL');
    }
  });

  it("marking a dead job's resource available again frees it, even under a reused pid", async () => {
    library(h.home, 'lib', 2, 4);
    await new VolumeStore(h.home).create('v', { size: 1 << 20 }).fill(0, 1 << 20, { seed: 3 });
    const { child, exited } = await started(CHUNKED, h.home.dir);
    try {
      const mover = held(h.home).find((r) => r.name.startsWith('xcopy'))!.name;
      withInventory(h.home, (inv) => inv.setState(mover, 'unavailable'));
      expect(resources(h.home).get(mover)).toMatchObject({ state: 'unavailable', jobId: expect.any(Number) });
      child.kill('SIGKILL');
      await exited;
      setPids(h.home, process.pid);
      const inv = Inventory.open(h.home, { sync: false });
      try {
        expect(inv.setState(mover, 'available')).toMatchObject({ state: 'available', jobId: null, pid: null });
      } finally {
        inv.close();
      }
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('stale reservations', () => {
  it('are released on the next open after their process was SIGKILLed', async () => {
    library(h.home, 'lib', 2);
    const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD], { env: { ...process.env, HOME_DIR: h.home.dir }, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise((r) => child.once('exit', r));
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const held = await new Promise<string[]>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        if (out.includes('\n')) resolve(JSON.parse(out) as string[]);
      });
      child.once('exit', () => reject(new Error(`the child exited before securing: ${stderr}`)));
    });
    expect(held).toHaveLength(8);
    // While it lives, an open keeps its reservations.
    expect(withInventory(h.home, (inv) => inv.releasedStale)).toBe(0);
    const all = resources(h.home);
    for (const n of held) expect(all.get(n)).toMatchObject({ state: 'in-use', jobId: 1, pid: child.pid });
    expect(
      Library.open(h.home, 'lib')
        .drives()
        .map((d) => d.busy),
    ).toEqual([true, true]);

    child.kill('SIGKILL');
    await exited;
    expect(child.signalCode).toBe('SIGKILL');

    const inv = Inventory.open(h.home);
    try {
      expect(inv.releasedStale).toBe(8);
    } finally {
      inv.close();
    }
    expect(notAvailable(h.home)).toEqual([]);
    expect(
      Library.open(h.home, 'lib')
        .drives()
        .map((d) => d.busy),
    ).toEqual([false, false]);
    expect(fs.readFileSync(path.join(h.home.dir, 'logs', 'backup-manager.log'), 'utf8')).toMatch(
      new RegExp(`job 1: released 4 resources of stream 1 left by process ${child.pid} \\(its job is no longer running\\)`),
    );
  });

  it('a reservation of a running job whose drive lock is free is stale (the stream let its drive go)', () => {
    library(h.home, 'lib', 1);
    job(h.home, 9);
    withInventory(h.home, (inv) =>
      inv.catalog.transaction(() =>
        inv.reserve(
          [
            { name: 'server0', kind: 'server' },
            { name: 'lib/drive0', kind: 'drive' },
          ],
          { jobId: 9, stream: 0, pid: process.pid },
        ),
      ),
    );
    // Job 9 runs here (its lock is held), but nobody holds the drive's lock.
    expect(withInventory(h.home, (inv) => inv.releasedStale)).toBe(2);
    expect(notAvailable(h.home)).toEqual([]);
    expect(fs.readFileSync(path.join(h.home.dir, 'logs', 'backup-manager.log'), 'utf8')).toMatch(/job 9: released 2 resources of stream 0 left by process \d+ \(its drive is no longer locked\)/);
  });
});
