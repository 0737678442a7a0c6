import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Inventory } from '../../src/resources/inventory.js';
import { Library } from '../../src/tape/library.js';
import { library, notAvailable, resources, useHome, withInventory } from './helpers.js';

const h = useHome();
const dist = (p: string): string => pathToFileURL(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist', p)).href;

/** A real process that secures two streams, says so, and waits to be killed. */
const CHILD = `
import { Home } from ${JSON.stringify(dist('home/home.js'))};
import { secureStreams } from ${JSON.stringify(dist('resources/streams.js'))};
const streams = await secureStreams(Home.open(process.env.HOME_DIR), { jobId: 42, count: 2 });
process.stdout.write(JSON.stringify(streams.flatMap((s) => s.resources)) + '\\n');
setInterval(() => {}, 1000);
`;

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
    for (const n of held) expect(all.get(n)).toMatchObject({ state: 'in-use', jobId: 42, pid: child.pid });
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
    expect(fs.readFileSync(path.join(h.home.dir, 'logs', 'backup-manager.log'), 'utf8')).toMatch(new RegExp(`job 42: released 4 resources of stream 1 left by process ${child.pid} \\(gone\\)`));
  });

  it('a reserved drive whose lock is free is stale even if the pid lives (a recycled pid)', () => {
    library(h.home, 'lib', 1);
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
    // The reservation names this (live) process, but nobody holds the drive's lock.
    expect(withInventory(h.home, (inv) => inv.releasedStale)).toBe(2);
    expect(notAvailable(h.home)).toEqual([]);
  });
});
