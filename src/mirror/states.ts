/** Pair states, as storage arrays name them, and what each means for the data path. */

/** The states a pair can be in. */
export const PAIR_STATES = ['SMPL', 'COPY', 'PAIR', 'PSUS', 'PSUE', 'COPY(RS)'] as const;

/** A pair state: SMPL (simplex, not paired), COPY (initial copy), PAIR (mirrored),
 * PSUS (split by the user), PSUE (suspended by a failure), COPY(RS) (resynchronising). */
export type PairState = (typeof PAIR_STATES)[number];

/** The native engine's modes. */
export type EngineMode = 'duplex' | 'track' | 'instant';

/** Whether writes to the primary are duplexed to the secondary in `state`. */
export function isDuplexing(state: PairState): boolean {
  return state === 'COPY' || state === 'PAIR' || state === 'COPY(RS)';
}

/** Whether the pair is split (its secondary an independent image). */
export function isSplit(state: PairState): boolean {
  return state === 'PSUS' || state === 'PSUE';
}

/** The engine mode for a state (an instant split not yet filled copies on write). */
export function engineMode(state: PairState, fillPending: boolean): EngineMode {
  if (isDuplexing(state)) return 'duplex';
  return fillPending ? 'instant' : 'track';
}

/** Parses a state name as typed by a user (case-insensitive, COPY(RS) also as COPYRS). */
export function parseState(text: string): PairState | undefined {
  const t = text.toUpperCase().replace(/[^A-Z]/g, '');
  return PAIR_STATES.find((s) => s.replace(/[^A-Z]/g, '') === t);
}
