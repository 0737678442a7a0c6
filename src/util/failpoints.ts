/**
 * Named points where a test makes an operation fail, to check what the failure leaves
 * behind (`PLEXUS_FAILPOINTS=name,name`): the code path is the real one, the failure is
 * an E_INJECTED PlexusError at that point. Unset (always, outside tests), a failpoint
 * costs one environment lookup.
 */
import { PlexusError } from '../errors.js';

/** Throws E_INJECTED if `name` is listed in $PLEXUS_FAILPOINTS. */
export function failpoint(name: string): void {
  const list = process.env.PLEXUS_FAILPOINTS;
  if (list?.split(',').includes(name)) throw new PlexusError('E_INJECTED', `failure injected at ${name} (PLEXUS_FAILPOINTS)`);
}
