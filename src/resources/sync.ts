/**
 * The inventory rows that come from the tape libraries on disk: every library, its
 * drives (`LIB/driveN`) and its cartridges (barcodes), registered in the catalog each
 * time an inventory (or the fault registry) is opened. A module of its own so that
 * faults.ts and inventory.ts can both sync without importing each other.
 */
import type { Catalog } from '../catalog/catalog.js';
import type { Home } from '../home/home.js';
import { Library } from '../tape/library.js';
import { register } from '../tape/media.js';
import type { ResourceKind } from './kinds.js';

/** The kinds read from the libraries on disk (not defined by hand). */
export const SYNCED: ReadonlySet<ResourceKind> = new Set(['library', 'drive', 'cartridge']);

/** The inventory name of drive `n` of a library. */
export function driveName(library: string, drive: number): string {
  return `${library}/drive${drive}`;
}

/**
 * Registers the libraries, drives and cartridges on disk and forgets those gone. A
 * library new to the inventory is linked to every switch that links all libraries
 * known before it: the default switches keep reaching every library, a switch
 * cabled to some libraries only is left alone.
 */
export function syncInventory(home: Home, catalog: Catalog): void {
  const db = catalog.db;
  const libs = Library.list(home);
  for (const lib of libs) register(catalog, lib, false);
  const want = new Map<string, { kind: ResourceKind; detail: string }>();
  for (const lib of libs) {
    const c = lib.config;
    want.set(lib.name, { kind: 'library', detail: `${c.slots} slot${c.slots === 1 ? '' : 's'}, ${c.drives} drive${c.drives === 1 ? '' : 's'}` });
    for (let d = 0; d < c.drives; d++) want.set(driveName(lib.name, d), { kind: 'drive', detail: `library ${lib.name}` });
    for (const cart of c.cartridges) want.set(cart.barcode, { kind: 'cartridge', detail: `library ${lib.name}` });
  }
  type Row = { name: string; kind: ResourceKind; detail: string | null };
  const rows = (): Row[] => db.prepare(`SELECT name, kind, detail FROM resources`).all() as Row[];
  const have = new Map(rows().map((r) => [r.name, r]));
  const synced = [...have.values()].filter((r) => SYNCED.has(r.kind));
  const gone = synced.filter((r) => want.get(r.name)?.kind !== r.kind);
  const fresh = [...want].filter(([name, w]) => have.get(name)?.detail !== w.detail || have.get(name)?.kind !== w.kind);
  if (gone.length === 0 && fresh.length === 0) return;
  catalog.transaction(() => {
    for (const r of gone) {
      db.prepare(`DELETE FROM links WHERE endpoint = ?`).run(r.name);
      db.prepare(`DELETE FROM resources WHERE name = ?`).run(r.name);
    }
    const knownBefore = synced.filter((r) => r.kind === 'library' && !gone.includes(r)).map((r) => r.name);
    const switches = rows()
      .filter((r) => r.kind === 'switch')
      .map((r) => r.name);
    const links = db.prepare(`SELECT switch, endpoint FROM links`).all() as Array<{ switch: string; endpoint: string }>;
    const takesNew = switches.filter((s) => knownBefore.every((l) => links.some((k) => k.switch === s && k.endpoint === l)));
    for (const [name, w] of fresh) {
      const existing = db.prepare(`SELECT kind FROM resources WHERE name = ?`).get(name) as { kind: ResourceKind } | undefined;
      // A name a user gave a server or switch is not taken over by a library or cartridge.
      if (existing && existing.kind !== w.kind) continue;
      if (existing) {
        db.prepare(`UPDATE resources SET detail = ? WHERE name = ?`).run(w.detail, name);
        continue;
      }
      db.prepare(`INSERT INTO resources (name, kind, detail) VALUES (?, ?, ?)`).run(name, w.kind, w.detail);
      if (w.kind === 'library') for (const s of takesNew) db.prepare(`INSERT OR IGNORE INTO links (switch, endpoint) VALUES (?, ?)`).run(s, name);
    }
  });
}
