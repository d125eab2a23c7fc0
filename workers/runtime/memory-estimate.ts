/**
 * GPU memory a generation needs, computed from the graphs the app builds (no GPU needed): the pipeline keeps
 * every component's session alive, so the weights of all of them stay on the GPU; on top of that each phase
 * holds the live activations of the graph it runs (peak of a liveness walk over the graph in node order,
 * model/graph-split.ts). The same figures feed `npm run bench:memory` (next to what a run measured) and the
 * page's estimate before download (src/memory-estimates.json, made by `npm run memory:estimates`).
 */
import type { BuiltGraph } from '../model/graph';

export const COMPONENTS = ['text_encoder', 'text_encoder_2', 'unet', 'vae_decoder'] as const;
export type ComponentName = (typeof COMPONENTS)[number];

export interface GraphMemory {
  /** Bytes of the initializers a session holds (weights at the dtype they are cast to). */
  weights: number;
  /** Peak bytes of live activations in one run. */
  activations: number;
  /** Largest single tensor (against maxBufferSize / maxStorageBufferBindingSize). */
  largestTensor: number;
}

export interface MemoryPhase {
  phase: 'sessions created' | 'encode' | 'denoise step' | 'vae decode';
  bytes: number;
}

export interface MemoryEstimate {
  components: Record<ComponentName, GraphMemory>;
  phases: MemoryPhase[];
  /** The highest phase. */
  peakBytes: number;
  peakPhase: MemoryPhase['phase'];
}

export function graphMemory(graph: BuiltGraph): GraphMemory {
  if (!graph.split) throw new Error('graphMemory: the graph was not built by GraphBuilder');
  const plan = graph.split(Infinity)[0]!.plan;
  return { weights: plan.weightBytes, activations: plan.activationBytes, largestTensor: graph.stats.largest.bytes };
}

/** Phases of one generation: all sessions resident, then encode, each denoising step, the VAE decode. */
export function estimateGpuMemory(graphs: Record<ComponentName, BuiltGraph>): MemoryEstimate {
  const components = Object.fromEntries(COMPONENTS.map((c) => [c, graphMemory(graphs[c])])) as Record<ComponentName, GraphMemory>;
  const weights = COMPONENTS.reduce((a, c) => a + components[c].weights, 0);
  // between phases the loop keeps a few small tensors (embeddings, latents): part of the activations' slack
  const phases: MemoryPhase[] = [
    { phase: 'sessions created', bytes: weights },
    { phase: 'encode', bytes: weights + Math.max(components.text_encoder.activations, components.text_encoder_2.activations) },
    { phase: 'denoise step', bytes: weights + components.unet.activations },
    { phase: 'vae decode', bytes: weights + components.vae_decoder.activations },
  ];
  const top = phases.reduce((a, b) => (b.bytes > a.bytes ? b : a));
  return { components, phases, peakBytes: top.bytes, peakPhase: top.phase };
}
