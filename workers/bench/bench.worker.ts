/**
 * The benchmark page's worker: instruments WebGPU (buffers, dispatches, submits) before onnxruntime-web starts,
 * then runs workers/bench/gpu-bench.ts — the same module `npm run bench:gpu` runs in Node.
 */
/// <reference lib="webworker" />
import { GpuLedger } from '../runtime/gpu-ledger';
import type { BenchEvent, BenchRequest } from './bench-protocol';

declare const self: DedicatedWorkerGlobalScope;

const ledger = new GpuLedger();
if (self.navigator.gpu) ledger.instrumentGpu(self.navigator.gpu);
let running: AbortController | undefined;
const post = (e: BenchEvent) => self.postMessage(e);

self.addEventListener('message', (e: MessageEvent<BenchRequest>) => {
  const req = e.data;
  if (req.type === 'cancel') {
    running?.abort();
    return;
  }
  if (running) return post({ type: 'error', message: 'A benchmark is already running.' });
  running = new AbortController();
  const signal = running.signal;
  void (async () => {
    try {
      const { configureOrt } = await import('../runtime/ort');
      configureOrt({ wasmPaths: req.ortWasmBase });
      const { probeCapabilities } = await import('../runtime/capabilities');
      const caps = await probeCapabilities();
      const { runGpuBench } = await import('./gpu-bench');
      const result = await runGpuBench(
        {
          model: req.model,
          size: req.size,
          steps: req.steps,
          precision: req.precision ?? (caps.shaderF16 ? 'fp16' : 'fp32'),
          graphCapture: req.graphCapture,
          fused: req.fused,
          noDecode: req.noDecode,
          files: req.files,
          ledger,
          signal,
          onProgress: (p) => post({ type: 'progress', ...p }),
        },
        self.navigator.userAgent,
      );
      post({ type: 'result', result });
    } catch (err) {
      // the stack for whoever reads the console (the page shows the message); a cancel is not an error
      if (!signal.aborted) console.error('bench failed:', (err as Error)?.stack ?? err);
      post({ type: 'error', message: signal.aborted ? 'Cancelled.' : (err as Error).message || String(err) });
    } finally {
      running = undefined;
    }
  })();
});
