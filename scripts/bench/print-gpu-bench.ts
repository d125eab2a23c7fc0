/** The GPU benchmark's result as the table both hosts of `npm run bench:gpu` print. */
import type { GpuBenchResult } from '../../workers/bench/gpu-bench';

export function printGpuBench(r: GpuBenchResult, log: (line: string) => void = console.log): void {
  const GB = (n: number) => `${(n / 1e9).toFixed(2)} GB`;
  log(`adapter            ${r.adapter} (shader-f16 ${r.shaderF16}; maxBufferSize ${r.limits.maxBufferSize}, maxStorageBufferBindingSize ${r.limits.maxStorageBufferBindingSize})`);
  log(`host               ${r.host}`);
  log(`ms per CFG step    ${r.msPerStep.toFixed(1)} (median of steps 2…${r.steps}; each: ${r.stepMs.map((m) => m.toFixed(0)).join(', ')} ms)`);
  log(`TFLOP/s            ${r.tflops.toFixed(3)} (U-Net ${r.unetTflopPerImage.toFixed(3)} TFLOP per image, 2 per step)`);
  log(`per step           ${r.dispatchesPerStep} dispatches, ${r.submitsPerStep} submits, ${r.bindGroupsPerStep} bind groups, ${r.readbacksPerStep} readbacks`);
  if (r.fusedCut) {
    const c = r.fusedCut;
    log(`fused kernels cut  ${c.off.dispatchesPerStep} → ${c.on.dispatchesPerStep} dispatches per step (−${(100 * c.dispatchCut).toFixed(1)}%), ${c.off.msPerStep.toFixed(1)} → ${c.on.msPerStep.toFixed(1)} ms/step: ${c.speedup.toFixed(3)}× in one run`);
  }
  if (r.capture) {
    const c = r.capture;
    log(`graph capture      plain ${c.off.msPerStep.toFixed(1)} ms/step (${c.off.bindGroupsPerStep} bind groups, loop peak ${GB(c.off.peakBytes)}), captured ${c.on.msPerStep.toFixed(1)} ms/step (${c.on.bindGroupsPerStep}, ${GB(c.on.peakBytes)}): ${c.speedup.toFixed(3)}× in one run`);
  }
  log(`fused kernels      ${r.fusedOps === 'off' ? 'off' : Object.entries(r.fusedOps).map(([k, v]) => `${k}: ${v}`).join('; ')}`);
  log(`U-Net graph        ${r.unetNodes} nodes: ${Object.entries(r.unetOps).sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  log(`shader compile     ~${(r.shaderCompileMs / 1000).toFixed(1)} s (first step minus the median)`);
  log(`sessions           ${(r.sessionCreateMs / 1000).toFixed(1)} s: ${r.sessions.map((s) => `${s.label} ${(s.ms / 1000).toFixed(1)} s`).join(', ')}`);
  log(`encode / VAE       ${(r.encodeMs / 1000).toFixed(1)} s / ${(r.vaeMs / 1000).toFixed(1)} s`);
  log(`GPU peak           ${GB(r.gpuPeakBytes)}; headline loop ${r.graphCapture ? 'captured' : 'plain'}; image finite ${r.finite}`);
}
