/**
 * The harness module bundled by e2e/harness/page.ts and injected into a page on the preview origin:
 * configures onnxruntime-web (runtime files at /ort/, one thread) and exposes the checks on window.
 */
import { configureOrt } from '../../workers/runtime/ort';
import { fillFullsizeCache, runFullsizeCached } from './fullsize';
import { checkFixtureGraphs } from './graphs';
import { runPipeline } from './pipeline';

const api = { checkFixtureGraphs, runPipeline, fillFullsizeCache, runFullsizeCached };
export type KoalaHarness = typeof api;

configureOrt({ wasmPaths: '/ort/', numThreads: 1 });
(globalThis as unknown as { __koalaHarness: KoalaHarness }).__koalaHarness = api;
