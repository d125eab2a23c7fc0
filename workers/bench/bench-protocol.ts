/** Messages between the benchmark page (src/bench/) and its worker (workers/bench/bench.worker.ts). */
import type { GpuBenchResult } from './gpu-bench';
import type { BenchModel, RandomRepoInputs } from './random-repo';

export type { GpuBenchResult, BenchModel };

export type BenchRequest =
  | {
      type: 'run';
      model: BenchModel;
      size: number;
      steps: number;
      precision?: 'fp16' | 'fp32';
      /** The loop without, with, or both without and with graph capture (default both). */
      graphCapture?: 'off' | 'on' | 'both';
      fused?: 'auto' | 'off' | 'both';
      noDecode?: boolean;
      /** URL prefix where the page serves onnxruntime-web's .wasm/.mjs files. */
      ortWasmBase: string;
      files: Pick<RandomRepoInputs, 'small' | 'configs'>;
    }
  | { type: 'cancel' };

export type BenchEvent =
  | { type: 'progress'; phase: string; done: number; total: number; message: string }
  | { type: 'result'; result: GpuBenchResult }
  | { type: 'error'; message: string };
