/** The storage home: the directory where volumes, bitmaps and the catalog live. */
import fs from 'node:fs';
import path from 'node:path';
import { PlexusError } from '../errors.js';

const MARKER = 'plexus.json';
const FORMAT = 1;

/** Where the home is: an explicit directory, else $PLEXUS_HOME, else ./.plexus. */
export function resolveHomeDir(dir?: string): string {
  return path.resolve(dir || process.env.PLEXUS_HOME || '.plexus');
}

/** An opened storage home. */
export class Home {
  private constructor(readonly dir: string) {}

  /** Opens the home at `dir`, creating its layout if it does not exist yet. */
  static open(dir?: string): Home {
    const root = resolveHomeDir(dir);
    const marker = path.join(root, MARKER);
    if (fs.existsSync(root) && !fs.statSync(root).isDirectory()) {
      throw new PlexusError('E_INVALID', `home ${root} exists and is not a directory`);
    }
    if (!fs.existsSync(marker)) {
      Home.init(root);
    } else {
      let format: unknown;
      try {
        format = (JSON.parse(fs.readFileSync(marker, 'utf8')) as { format?: unknown }).format;
      } catch (e) {
        throw new PlexusError('E_CORRUPT', `home marker ${marker} is not valid JSON`, { cause: e });
      }
      if (format !== FORMAT) {
        throw new PlexusError('E_CORRUPT', `home ${root} has format ${String(format)}, this Plexus reads format ${FORMAT}`);
      }
    }
    return new Home(root);
  }

  /** Creates the home's layout; harmless if it exists. Returns whether it was new. */
  static init(dir?: string): boolean {
    const root = resolveHomeDir(dir);
    const marker = path.join(root, MARKER);
    if (fs.existsSync(marker)) return false;
    try {
      fs.mkdirSync(path.join(root, 'volumes'), { recursive: true });
      const tmp = `${marker}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify({ format: FORMAT, created: new Date().toISOString() }, null, 2) + '\n');
      fs.renameSync(tmp, marker);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new PlexusError(code === 'EACCES' ? 'E_ACCESS' : code === 'ENOSPC' ? 'E_NOSPC' : 'E_IO', `cannot create home ${root}: ${(e as Error).message}`, { cause: e });
    }
    return true;
  }

  /** Directory holding volume files. */
  get volumesDir(): string {
    return path.join(this.dir, 'volumes');
  }
}
