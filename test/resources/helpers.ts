/** Scratch homes with tape libraries for the resource tests (not a test file itself). */
import path from 'node:path';
import { afterEach, beforeEach } from 'vitest';
import { createLibrary } from '../../src/backup/libraries.js';
import { Catalog } from '../../src/catalog/catalog.js';
import { Home } from '../../src/home/home.js';
import { Inventory, type Resource } from '../../src/resources/inventory.js';
import type { Library } from '../../src/tape/library.js';
import { scratchDir } from '../helpers/home.js';

/** A fresh home per test. */
export function useHome(): { readonly home: Home; readonly dir: string } {
  let scratch: ReturnType<typeof scratchDir> | undefined;
  let home: Home | undefined;
  beforeEach(() => {
    scratch = scratchDir('plexus-resources-');
    home = Home.open(path.join(scratch.dir, 'home'));
  });
  afterEach(() => {
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
