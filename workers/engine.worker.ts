/**
 * The engine's module Web Worker: the message loop only. Requests come from src/engine-client.ts;
 * the loop (engine-loop.ts) calls the Engine from workers/engine.ts and posts events back.
 *
 * `import.meta.glob` (resolved by Vite at build time) picks up workers/engine.ts when it exists. Until the
 * engine is wired, a minimal engine answers `probe` from navigator.gpu and refuses everything else with a
 * clear `internal` error, so the page's capability checks work on their own.
 */
/// <reference lib="webworker" />
import { createEngineLoop } from './engine-loop';
import type { CreateEngine, Engine } from './engine-types';
import type { Capabilities, EngineRequest } from './protocol';
import { EngineError } from './protocol';

declare global {
  interface ImportMeta {
    glob<T>(pattern: string, opts: { eager: true }): Record<string, T>;
  }
}

declare const self: DedicatedWorkerGlobalScope;

/** Adapter facts straight from navigator.gpu (used only when workers/engine.ts is not in the build). */
async function probeNavigatorGpu(): Promise<Capabilities> {
  const gpu = (self.navigator as Navigator & { gpu?: GPU }).gpu;
  if (!gpu) {
    return { webgpu: false, shaderF16: false, problem: 'This browser does not expose WebGPU (navigator.gpu is missing).' };
  }
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (err) {
    return { webgpu: false, shaderF16: false, problem: `requestAdapter() failed: ${(err as Error).message}` };
  }
  if (!adapter) {
    return {
      webgpu: false,
      shaderF16: false,
      problem: 'WebGPU is present but no GPU adapter is available (blocklisted GPU, disabled hardware acceleration, or no GPU).',
    };
  }
  const info = adapter.info;
  const adapterName = [info?.vendor, info?.architecture, info?.device, info?.description].filter(Boolean).join(' ') || 'unknown adapter';
  return {
    webgpu: true,
    adapterName,
    shaderF16: adapter.features.has('shader-f16'),
    maxBufferSize: adapter.limits.maxBufferSize,
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
  };
}

function probeOnlyEngine(): Engine {
  const missing = () => Promise.reject(new EngineError('internal', 'This build has no inference engine (workers/engine.ts is missing).'));
  return {
    probe: probeNavigatorGpu,
    load: missing,
    generate: missing,
    tokenize: missing,
    listCache: () => Promise.resolve([]),
    deleteCache: missing,
  };
}

const found = import.meta.glob<{ createEngine?: CreateEngine }>('./engine.ts', { eager: true });
const create = Object.values(found)[0]?.createEngine;
const engine: Engine = create ? create() : probeOnlyEngine();

const loop = createEngineLoop(engine, (event, transfer) => self.postMessage(event, transfer ?? []));
self.addEventListener('message', (e: MessageEvent<EngineRequest>) => {
  void loop.handle(e.data);
});
