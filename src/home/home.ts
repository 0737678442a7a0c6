/** The storage home: the directory where volumes, bitmaps and the catalog live. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { asPlexusError, PlexusError } from '../errors.js';
import { syncDir, writeFileDurable } from '../util/durable.js';

const MARKER = 'plexus.json';
const FORMAT = 1;

/** Where the home is: an explicit directory, else $PLEXUS_HOME, else ./.plexus. */
export function resolveHomeDir(dir?: string): string {
  return path.resolve(dir || process.env.PLEXUS_HOME || '.plexus');
}

/** How to open a home. */
export interface OpenHomeOptions {
  /**
   * Create the home when it does not exist (default true). With false a missing home is
   * E_NOENT naming it and suggesting `plexus init`: a mistyped --home must not look empty.
   */
  create?: boolean;
}

/** An opened storage home. */
export class Home {
  private constructor(readonly dir: string) {}

  /** Opens the home at `dir`, creating its layout if it does not exist yet (unless `create: false`). */
  static open(dir?: string, opts: OpenHomeOptions = {}): Home {
    const root = resolveHomeDir(dir);
    const marker = path.join(root, MARKER);
    if (fs.existsSync(root) && !fs.statSync(root).isDirectory()) {
      throw new PlexusError('E_INVALID', `home ${root} exists and is not a directory`);
    }
    if (!fs.existsSync(marker)) {
      if (opts.create === false) {
        throw new PlexusError('E_NOENT', `no Plexus home at ${root} (create it with \`plexus init\`, or check --home / PLEXUS_HOME)`);
      }
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

  /**
   * Creates the home's layout; harmless if it exists. Returns whether it was new.
   * The marker is written durably: a temporary file, fsynced, renamed over the marker,
   * then the directory fsynced, so a crash leaves either no marker or a whole one.
   */
  static init(dir?: string): boolean {
    const root = resolveHomeDir(dir);
    const marker = path.join(root, MARKER);
    if (fs.existsSync(marker)) return false;
    try {
      const made = fs.mkdirSync(path.join(root, 'volumes'), { recursive: true });
      // mkdir -p returns the first directory it created: the entry naming it lives in its
      // parent, which must reach the disk too, or a crash could lose the whole home.
      if (made !== undefined) syncDir(path.dirname(made));
      syncDir(root);
      writeFileDurable(marker, `${JSON.stringify({ format: FORMAT, created: new Date().toISOString() }, null, 2)}\n`);
    } catch (e) {
      const err = asPlexusError(e);
      throw new PlexusError(err.code, `cannot create home ${root}: ${err.message}`, { cause: e });
    }
    return true;
  }

  /** Directory holding volume files. */
  get volumesDir(): string {
    return path.join(this.dir, 'volumes');
  }
}

/** The host identity asking: `host` when given, else $PLEXUS_HOST, else the hostname
 * (the rule of the CLI's global `--host`; access lists are checked against it). */
export function hostIdentity(host?: string): string {
  return host || process.env.PLEXUS_HOST || os.hostname();
}
