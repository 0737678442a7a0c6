/** Volume names: what users may call a volume, and where its files go. */
import path from 'node:path';
import { PlexusError } from '../errors.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Throws E_INVALID unless `name` is a valid volume name. */
export function checkVolumeName(name: string): string {
  if (!NAME.test(name) || name.endsWith('.meta')) {
    throw new PlexusError('E_INVALID', `invalid volume name '${name}': use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  }
  return name;
}

/** The data file of volume `name` in `dir` (its identity sits beside it as `.img.meta`). */
export function volumeFile(dir: string, name: string): string {
  return path.join(dir, `${checkVolumeName(name)}.img`);
}
