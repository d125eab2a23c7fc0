/**
 * GPU-resident latents: uploads, the helper-graph sessions (helper-graphs.ts) that do the per-step
 * arithmetic between U-Net calls, and tensor lifetime. On WebGPU every helper output stays a GPU buffer
 * (`preferredOutputLocation: 'gpu-buffer'`) and is fed straight into the next run, so a denoising loop
 * moves nothing GPU→CPU until the caller reads a result through a ReadbackCounter. On the wasm backend
 * the same code runs with CPU tensors.
 */
import { EngineError } from '../protocol';
import { buildCfgCombineGraph, buildScaleInputGraph, buildStepGraph, type LatentShape } from './helper-graphs';
import { ort, ortDevice, type OrtTensor } from './ort';
import { createSession, type Backend, type EngineSession } from './session';

export type { LatentShape } from './helper-graphs';

const numel = (d: readonly number[]) => d.reduce((a, b) => a * b, 1);

/**
 * A float32 tensor on the backend's device: on WebGPU a GPU buffer written from `data` (CPU→GPU, not a
 * readback) that `dispose()` destroys; on wasm a CPU tensor.
 */
export async function uploadF32(backend: Backend, data: Float32Array, dims: number[]): Promise<OrtTensor> {
  if (data.length !== numel(dims)) throw new EngineError('internal', `uploadF32: ${data.length} values for shape [${dims}]`);
  if (backend === 'wasm') return new ort.Tensor('float32', data, dims);
  const device = await ortDevice();
  const size = Math.max(16, Math.ceil(data.byteLength / 16) * 16);
  const buffer = device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
  return ort.Tensor.fromGpuBuffer(buffer, { dataType: 'float32', dims, dispose: () => buffer.destroy() });
}

/** Disposes tensors that own device memory (GPU tensors); CPU tensors are left to the GC. */
export function disposeAll(...tensors: (OrtTensor | undefined)[]): void {
  for (const t of tensors) if (t && t.location === 'gpu-buffer') t.dispose();
}

export interface StepInputs {
  /** Current latents x_t [B,C,H,W]. */
  sample: OrtTensor;
  /** U-Net output: [2B,…] with CFG, else [B,…]. */
  modelOutput: OrtTensor;
  /** packCoefficients(scheduler.stepCoefficients(i)). */
  coefficients: Float32Array;
  /** Standard-normal noise [B,…] for ancestral steps (default zeros). */
  noise?: OrtTensor;
  /** Previous step's x0 for multistep schedulers (default zeros). */
  prevX0?: OrtTensor;
  /** CFG scale (with CFG). */
  guidance?: number;
}

/**
 * The helper sessions for one latent shape. Outputs are GPU tensors on WebGPU; the caller owns them and
 * disposes them (disposeAll) when replaced.
 */
export class LatentOps {
  private zeros?: OrtTensor;

  private constructor(
    readonly backend: Backend,
    readonly shape: LatentShape,
    readonly cfg: boolean,
    private readonly scale: EngineSession,
    private readonly stepper: EngineSession,
    private readonly combiner: EngineSession,
  ) {}

  /** Builds and creates the helper sessions (scale/concat, fused CFG+step, standalone CFG combine). */
  static async create(backend: Backend, shape: LatentShape, opts: { cfg: boolean }): Promise<LatentOps> {
    const common = { backend, gpuOutputs: backend === 'webgpu', graphOptimizationLevel: 'all' as const };
    const scale = await createSession(buildScaleInputGraph(shape, opts), { ...common, name: 'scale_model_input' });
    const stepper = await createSession(buildStepGraph(shape, opts), { ...common, name: 'scheduler_step' });
    const combiner = await createSession(buildCfgCombineGraph(shape), { ...common, name: 'cfg_combine' });
    return new LatentOps(backend, shape, opts.cfg, scale, stepper, combiner);
  }

  private dims(b = this.shape.batch): number[] {
    return [b, this.shape.channels, this.shape.height, this.shape.width];
  }

  private scalar(v: number): OrtTensor {
    return new ort.Tensor('float32', new Float32Array([v]), [1]);
  }

  private async zero(): Promise<OrtTensor> {
    this.zeros ??= await uploadF32(this.backend, new Float32Array(numel(this.dims())), this.dims());
    return this.zeros;
  }

  /** scale_model_input (× `scale`), duplicated to [2B,…] with CFG: the U-Net's `sample`. */
  async modelInput(sample: OrtTensor, scale: number): Promise<OrtTensor> {
    const r = await this.scale.run({ sample, scale: this.scalar(scale) });
    return r.model_input;
  }

  /** `u + g·(c − u)` alone (the fused step does this itself). */
  async cfgCombine(noisePred: OrtTensor, guidance: number): Promise<OrtTensor> {
    return (await this.combiner.run({ noise_pred: noisePred, guidance: this.scalar(guidance) })).model_output;
  }

  /** One scheduler step; returns new GPU tensors `prev` (x_{t-1}) and `x0`. */
  async step(inp: StepInputs): Promise<{ prev: OrtTensor; x0: OrtTensor }> {
    if (inp.coefficients.length !== 6) throw new EngineError('internal', `step: expected 6 coefficients, got ${inp.coefficients.length}`);
    const feeds: Record<string, OrtTensor> = {
      sample: inp.sample,
      prev_x0: inp.prevX0 ?? (await this.zero()),
      noise: inp.noise ?? (await this.zero()),
      coefficients: new ort.Tensor('float32', Float32Array.from(inp.coefficients), [6]),
    };
    if (this.cfg) {
      if (inp.guidance === undefined) throw new EngineError('internal', 'step: guidance is required with CFG');
      feeds.noise_pred = inp.modelOutput;
      feeds.guidance = this.scalar(inp.guidance);
    } else {
      feeds.model_output = inp.modelOutput;
    }
    const r = await this.stepper.run(feeds);
    return { prev: r.prev_sample, x0: r.x0 };
  }

  async release(): Promise<void> {
    disposeAll(this.zeros);
    this.zeros = undefined;
    await Promise.all([this.scale.release(), this.stepper.release(), this.combiner.release()]);
  }
}
