/** Benchmark defaults the CLI's command tree shows in its help (a light module). */

/** Bytes per bitmap bit the resync benchmark measures by default. */
export const DEFAULT_GRANULARITIES = [4096, 65536, 1 << 20];
/** Fractions of the regions dirtied the resync benchmark measures by default. */
export const DEFAULT_FRACTIONS = [0.001, 0.01, 0.1, 1];
