/** The mirrored pairs of a command's home (apart from ./context.ts: a command that needs no pairs does not load them). */
import { Mirrors } from '../mirror/mirrors.js';
import { type GlobalOptions, homeOf } from './context.js';

/** The mirrored pairs of the command's home. */
export function mirrorsOf(o: GlobalOptions): Mirrors {
  return new Mirrors(homeOf(o));
}
