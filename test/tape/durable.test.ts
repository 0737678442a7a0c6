/**
 * Library files are replaced whole: `library.json` and a drive's record go through a
 * temporary file, fsync and rename, so a reader or a killed writer never meets one torn.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLibrary } from '../../src/backup/libraries.js';
import { Catalog } from '../../src/catalog/catalog.js';
import type { Library } from '../../src/tape/library.js';
import { useHome } from '../resources/helpers.js';

const h = useHome();
const WRITER = path.join(__dirname, '..', 'fixtures', 'drive-record-writer.mjs');

function library(): Library {
  const c = Catalog.open(h.home);
  try {
    return createLibrary(h.home, c, 'lib', { slots: 2, drives: 1, cartridgeSize: 4 << 20, blockSize: 64 << 10 });
  } finally {
    c.close();
  }
}

describe('durable library files', () => {
  it('library.json is complete and no temporary file is left', () => {
    const lib = library();
    const files = fs.readdirSync(lib.dir);
    expect(files.sort()).toEqual(['cartridges', 'drives', 'library.json']);
    expect(JSON.parse(fs.readFileSync(path.join(lib.dir, 'library.json'), 'utf8'))).toMatchObject({ format: 1, name: 'lib', slots: 2 });
  });

  it('a drive record rewritten in a loop reads whole at every moment, and after SIGKILL', async () => {
    const lib = library();
    const child = spawn(process.execPath, [WRITER, h.home.dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout!.once('data', () => resolve());
        child.once('exit', (code) => reject(new Error(`writer exited ${code}`)));
      });
      const dir = path.join(lib.dir, 'drives');
      const record = fs.readdirSync(dir).find((f) => f.endsWith('.json'));
      expect(record).toBeDefined();
      const file = path.join(dir, record!);
      let reads = 0;
      const torn: string[] = [];
      const until = Date.now() + 1500;
      while (Date.now() < until) {
        const text = fs.readFileSync(file, 'utf8');
        reads++;
        try {
          expect(JSON.parse(text)).toHaveProperty('pid', child.pid);
        } catch {
          torn.push(text);
        }
        // Let the writer's loop run between reads.
        if (reads % 50 === 0) await new Promise((r) => setImmediate(r));
      }
      expect(reads).toBeGreaterThan(100);
      expect(torn).toEqual([]);
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toHaveProperty('pid', child.pid);
      // The killed writer's temporaries are its only leftovers, never the record itself.
      expect(lib.drives()[0]).toMatchObject({ busy: false });
    } finally {
      child.kill('SIGKILL');
    }
  });
});
