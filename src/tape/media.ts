/** A library's cartridges as the catalog records them (media rows), read from the cartridges. */
import type { Catalog, MediaRow } from '../catalog/catalog.js';
import { PlexusError } from '../errors.js';
import { TapeDrive } from './drive.js';
import type { Library } from './library.js';

/**
 * Makes sure the catalog knows `lib` and its cartridges, reading each cartridge's fill
 * from the cartridge itself when it is new to the catalog. A catalog that meets
 * cartridges holding backups it has no record of refuses to go on (job numbers would
 * clash with those on tape): `catalog rebuild` first.
 */
export function register(catalog: Catalog, lib: Library, strict = true): void {
  const known = new Map(catalog.media(lib.name).map((m) => [m.barcode, m]));
  const fresh = lib.config.cartridges.filter((c) => !known.has(c.barcode));
  if (fresh.length === 0 && catalog.libraries().some((l) => l.name === lib.name)) return;
  catalog.transaction(() => {
    catalog.putLibrary({
      name: lib.name,
      dir: lib.kind === 'disk' ? lib.cartridgeDir : lib.dir,
      slots: lib.config.slots,
      drives: lib.config.drives,
      cartridgeSize: lib.config.cartridgeSize,
      createdAt: lib.config.createdAt,
    });
    let unknownData: string | undefined;
    for (const c of fresh) {
      const m = inspect(lib, c.barcode, c.slot);
      if (m.bytes > 0 && m.state !== 'missing') unknownData ??= c.barcode;
      catalog.putMedia(m);
    }
    if (strict && unknownData && catalog.jobs().length === 0) {
      throw new PlexusError('E_STATE', `cartridge ${unknownData} of library ${lib.name} holds backups this catalog has no record of: run \`plexus catalog rebuild\` first`);
    }
  });
}

/** A cartridge's state as read from its file. */
export function inspect(lib: Library, barcode: string, slot: number): Omit<MediaRow, 'updatedAt'> {
  const base = { barcode, library: lib.name, slot, capacity: lib.config.cartridgeSize };
  if (!lib.present(barcode)) return { ...base, state: 'missing', bytes: 0 };
  const s = TapeDrive.peek(lib.cartridgeFile(barcode));
  return { ...base, state: s.files === 0 ? 'scratch' : s.inEarlyWarning ? 'full' : 'filling', bytes: s.dataBytes };
}
