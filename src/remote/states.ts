/**
 * The state machine of a remote group at its primary site: every transition goes
 * through `checkTransition`, so an "impossible" one is an error, never a silent state.
 *
 *   COPY → PAIR (copy done), COPY → PSUE (link lost), COPY → PSUS (cancelled)
 *   PAIR → PSUS (split), PAIR → PSUE (link lost, journal full, sync timeout)
 *   PSUS → COPY, PSUE → COPY (resync), PSUS ↔ PSUE
 */
import { PlexusError } from '../errors.js';
import type { GroupState } from '../home/remote-records.js';

const ALLOWED: Record<GroupState, readonly GroupState[]> = {
  COPY: ['PAIR', 'PSUE', 'PSUS'],
  PAIR: ['PSUS', 'PSUE'],
  PSUS: ['COPY', 'PSUE'],
  PSUE: ['COPY', 'PSUS'],
};

/** E_STATE unless a group may go from `from` to `to`. */
export function checkTransition(from: GroupState, to: GroupState, group: string): void {
  if (!ALLOWED[from].includes(to)) throw new PlexusError('E_STATE', `remote group ${group} cannot go from ${from} to ${to}`);
}
