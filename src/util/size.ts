/** Size strings as users type them (`512`, `4K`, `64KiB`, `1M`, `2G`), powers of 1024. */
import { PlexusError } from '../errors.js';

const UNITS: Record<string, number> = { '': 1, b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };

/** Parses a size; throws E_INVALID naming the text when it is malformed. */
export function parseSize(text: string, what = 'size'): number {
  const m = /^\s*(\d+)\s*([kmgtp]?)(i?b)?\s*$/i.exec(String(text));
  const bare = /^\s*(\d+)\s*b?\s*$/i.exec(String(text));
  if (!m && !bare) {
    throw new PlexusError('E_INVALID', `malformed ${what} '${text}' (expected e.g. 512, 4K, 64KiB, 1M, 2G)`);
  }
  const digits = (m ?? bare)![1]!;
  const unit = m ? m[2]!.toLowerCase() : '';
  const value = Number(digits) * UNITS[unit]!;
  if (!Number.isSafeInteger(value)) throw new PlexusError('E_INVALID', `${what} '${text}' is too large`);
  return value;
}

/** Formats bytes with a binary unit: 1536 → "1.5 KiB". */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[i]}`;
}

/** Formats a rate in bytes per second. */
export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(Math.round(bytesPerSecond))}/s`;
}
