/** Plexus: the public library API. */
export { PlexusError } from './errors.js';
export { Home, resolveHomeDir } from './home/home.js';
export { VolumeStore, DEFAULT_BLOCK_SIZE, type CreateVolumeOptions } from './volumes/store.js';
export { Volume, openVolumeFile, type VolumeInfo } from './volumes/volume.js';
export { copyVolume, type CopyOptions, type CopyReport } from './volumes/copy.js';
export { DirtyBitmap, DEFAULT_GRANULARITY } from './volumes/bitmap.js';
export { parseSize, formatBytes, formatRate } from './util/size.js';
export type { ProgressCallback, ProgressEvent } from './progress.js';
export { Mirrors, type PairSelector, type PairInfo, type CreatePairOptions, type SplitOptions, type SplitReport, type ResyncOptions, type ResyncResult } from './mirror/mirrors.js';
export { PAIR_STATES, parseState, type PairState } from './mirror/states.js';
export type { VolumeIo, IoOptions } from './mirror/io.js';
export { promote, rotate, stage, type PromoteReport, type RotateReport, type StageReport } from './mirror/plexes.js';
