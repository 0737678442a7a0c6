/** Scratch homes with tape libraries for the resource tests (not a test file itself). */
import path from 'node:path';
import { afterEach, beforeEach } from 'vitest';
import { createLibrary } from '../../src/backup/libraries.js';
import { Catalog } from '../../src/catalog/catalog.js';
import { Home } from '../../src/home/home.js';
import { Inventory, type Resource } from '../../src/resources/inventory.js';
import type { Library } from '../../src/tape/library.js';
import { scratchDir } from '../helpers/home.js';

/** Jobs `job()` started in this process and left running, by home directory. */
const running = new Map<string, number[]>();

/**
 * Job `id` of the home, running in this process (streams are secured for a job whose
 * lock this process holds): started now, with jobs before it started and failed so the
 * catalog hands out `id`, unless it already runs. Ended when the test's home goes.
 */
export function job(home: Home, id: number): number {
  const mine = running.get(home.dir) ?? [];
  if (mine.includes(id)) return id;
  const c = Catalog.open(home);
  try {
    for (;;) {
      const n = c.startJob({ target: 'test', targetSize: 0 });
      if (n === id) break;
      c.finishJob(n, 'failed', 'filler');
      if (n > id) throw new Error(`job ${id} is taken (the catalog handed out ${n})`);
    }
  } finally {
    c.close();
  }
  running.set(home.dir, [...mine, id]);
  return id;
}

/** Ends the jobs `job()` left running in a home. */
function endJobs(home: Home): void {
  const ids = running.get(home.dir) ?? [];
  running.delete(home.dir);
  if (ids.length === 0) return;
  const c = Catalog.open(home);
  try {
    for (const id of ids) if (c.runsJob(id)) c.finishJob(id, 'failed', 'test over');
  } finally {
    c.close();
  }
}

/** A fresh home per test. */
export function useHome(): { readonly home: Home; readonly dir: string } {
  let scratch: ReturnType<typeof scratchDir> | undefined;
  let home: Home | undefined;
  beforeEach(() => {
    scratch = scratchDir('plexus-resources-');
    home = Home.open(path.join(scratch.dir, 'home'));
  });
  afterEach(() => {
    if (home) endJobs(home);
    scratch?.cleanup();
    scratch = home = undefined;
  });
  return {
    get home() {
      return home!;
    },
    get dir() {
      return scratch!.dir;
    },
  };
}

/** A small library: 4 KiB blocks, 1 MiB cartridges. */
export function library(home: Home, name: string, drives: number, slots = 3): Library {
  const catalog = Catalog.open(home);
  try {
    return createLibrary(home, catalog, name, { slots, drives, cartridgeSize: 1 << 20, blockSize: 4096 });
  } finally {
    catalog.close();
  }
}

/** Runs `fn` on a freshly opened inventory. */
export function withInventory<T>(home: Home, fn: (inv: Inventory) => T): T {
  const inv = Inventory.open(home);
  try {
    return fn(inv);
  } finally {
    inv.close();
  }
}

/** Every resource, by name. */
export function resources(home: Home): Map<string, Resource> {
  return withInventory(home, (inv) => new Map(inv.list().map((r) => [r.name, r])));
}

/** Names of resources not `available`, with their state. */
export function notAvailable(home: Home): string[] {
  return [...resources(home).values()].filter((r) => r.state !== 'available').map((r) => `${r.name}:${r.state}`);
}
