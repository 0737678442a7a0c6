/**
 * The key sites authenticate each other with: 32 random bytes, shared by the two sites of
 * a link (`plexus remote key` prints the home's key, creating it on first use;
 * `plexus remote key --import FILE` installs the other site's). Kept in
 * `remote/peer.key`, mode 0600; never sent over the link (the handshake proves it).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PlexusError } from '../errors.js';
import { remoteDir } from '../home/remote-records.js';
import { writeFileDurable } from '../util/durable.js';

/** Key length in bytes. */
export const KEY_BYTES = 32;

export { remoteDir };

function keyFile(homeDir: string): string {
  return path.join(remoteDir(homeDir), 'peer.key');
}

/** Parses a key as written by `plexus remote key` (64 hex digits; whitespace ignored). */
export function parseKey(text: string, from: string): Buffer {
  const hex = text.trim();
  if (!/^[0-9a-f]{64}$/i.test(hex)) throw new PlexusError('E_INVALID', `${from} does not hold a Plexus peer key (64 hex digits, as \`plexus remote key\` prints)`);
  return Buffer.from(hex, 'hex');
}

/** The home's key, or undefined when none was made or imported yet. E_CORRUPT for a damaged file. */
export function readKey(homeDir: string): Buffer | undefined {
  let text: string;
  try {
    text = fs.readFileSync(keyFile(homeDir), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    return parseKey(text, keyFile(homeDir));
  } catch (e) {
    throw new PlexusError('E_CORRUPT', (e as Error).message, { cause: e });
  }
}

/** The home's key; E_STATE naming the fix when there is none. */
export function requireKey(homeDir: string): Buffer {
  const key = readKey(homeDir);
  if (!key) throw new PlexusError('E_STATE', `home ${homeDir} has no peer key: run \`plexus remote key\` at one site and \`plexus remote key --import FILE\` at the other`);
  return key;
}

function writeKey(homeDir: string, key: Buffer): void {
  fs.mkdirSync(remoteDir(homeDir), { recursive: true, mode: 0o700 });
  const umask = process.umask(0o077);
  try {
    writeFileDurable(keyFile(homeDir), `${key.toString('hex')}\n`);
  } finally {
    process.umask(umask);
  }
  fs.chmodSync(keyFile(homeDir), 0o600);
}

/** The home's key as hex, made now if it has none (`created` says which). */
export function ensureKey(homeDir: string): { key: string; created: boolean; file: string } {
  const known = readKey(homeDir);
  if (known) return { key: known.toString('hex'), created: false, file: keyFile(homeDir) };
  const key = crypto.randomBytes(KEY_BYTES);
  writeKey(homeDir, key);
  return { key: key.toString('hex'), created: true, file: keyFile(homeDir) };
}

/** Installs the other site's key (replacing this home's). */
export function importKey(homeDir: string, text: string, from: string): { file: string } {
  writeKey(homeDir, parseKey(text, from));
  return { file: keyFile(homeDir) };
}
