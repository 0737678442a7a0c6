/** `plexus init`: create the storage home (declared in ../tree/init.ts). */
import { Home, resolveHomeDir } from '../../home/home.js';
import type { GlobalOptions } from '../context.js';

/** `init`: creates the home, or says it exists. */
export function runInit(o: GlobalOptions): void {
  const dir = resolveHomeDir(o.home);
  const made = Home.init(dir);
  Home.open(dir);
  process.stdout.write(made ? `initialised Plexus home ${dir}\n` : `Plexus home ${dir} already exists\n`);
}
