/** Erasing a cartridge for reuse: a scratch tape again, with its barcode and geometry. */
import fs from 'node:fs';
import path from 'node:path';
import { callNative, fromSystem } from '../errors.js';
import { native } from '../native/binding.js';
import { syncDir } from '../util/durable.js';
import type { Library } from './library.js';

/**
 * Relabels cartridge `barcode` of `lib`, which the caller holds claimed (no job writes or
 * reads it): a fresh label with the same barcode, capacity and block size, and nothing
 * after it. The blank cartridge is formatted beside the old one and renamed over it, so a
 * crash leaves either the old cartridge whole or the blank one, never a torn label, and
 * the old file's space is freed once no reader holds it open.
 */
export function relabelCartridge(lib: Library, barcode: string): void {
  const file = lib.cartridgeFile(barcode);
  const label = callNative(() => {
    const d = native.NativeDrive.open(file, true);
    try {
      return d.label();
    } finally {
      d.unload();
    }
  });
  const blank = `${file}.relabel`;
  try {
    fs.rmSync(blank, { force: true });
  } catch (e) {
    throw fromSystem(e, blank);
  }
  callNative(() => native.NativeDrive.format(blank, { barcode, capacity: label.capacity, blockSize: label.blockSize, earlyWarning: label.earlyWarning }).unload());
  try {
    fs.renameSync(blank, file);
  } catch (e) {
    fs.rmSync(blank, { force: true });
    throw fromSystem(e, file);
  }
  syncDir(path.dirname(file));
}
