/** Hub client, resumable verified downloads and the model cache (browser worker and Node). */
export type * from './types';
export { DEFAULT_HUB_URL, DEFAULT_REPO, DEFAULT_REVISION, DEFAULT_VARIANT, resolveRepo, resolveCommit, listRepoFiles, resolveUrl } from './resolve';
export { selectPipelineFiles, parseWeightName, parseIndexName, pipelineComponents, shardsFromIndex } from './select';
export { downloadFile, blobKeyOf } from './download';
export { ensureModel, listCachedModels, deleteCachedModel, collectGarbage, manifestId, refId, type EnsureModelOptions, type StorageManagerLike } from './ensure';
export { IdbBlobStore, createIdbStore, DEFAULT_CHUNK_SIZE } from './idb-store';
export { InProcessLocks, defaultLocks } from './locks';
export { localRepo, modelFilesFromMap, cachedModelFiles } from './model-files';
export { ProgressTracker, formatBytes, toProgressEvent } from './progress';
export { openModel, browserStore, type OpenModelOptions } from './open';
export { benchStore, benchIdb, type BenchResult } from './bench';
