/** Plexus: the public library API. */
export { PlexusError } from './errors.js';
export { Home, resolveHomeDir } from './home/home.js';
export { VolumeStore, DEFAULT_BLOCK_SIZE, type CreateVolumeOptions } from './volumes/store.js';
export { Volume, openVolumeFile, type VolumeInfo } from './volumes/volume.js';
export { copyVolume, type CopyOptions, type CopyReport } from './volumes/copy.js';
export { DirtyBitmap, DEFAULT_GRANULARITY } from './volumes/bitmap.js';
export { parseSize, formatBytes, formatRate } from './util/size.js';
export type { ProgressCallback, ProgressEvent } from './progress.js';
