/**
 * Diffusion schedulers (diffusers 0.30 semantics) with every step written as one linear
 * combination, so the same step can run as a tiny helper graph on the GPU:
 *
 *   prev = sample·a + modelOutput·b + prevX0·c + noise·d
 *   x0   = sample·p + modelOutput·q          (predicted original sample)
 *
 * `prevX0` is the x0 of the previous step (DPM++ 2M's history; 0 elsewhere), `noise` the
 * ancestral noise (Euler a; 0 elsewhere). Scalars are computed the way diffusers computes them
 * (float32 tensors, numpy float64 tables); the element-wise combination runs in float64 and is
 * rounded once to float32. `step()` itself uses these coefficients, so the tests of `step()`
 * against diffusers' goldens test the coefficients too.
 *
 * Implemented: EulerDiscrete (leading / trailing / linspace, optional Karras sigmas),
 * EulerAncestralDiscrete, DPMSolverMultistep (dpmsolver++, order 2, midpoint, lower_order_final,
 * final_sigmas_type zero or sigma_min, optional Karras sigmas), DDIM (eta 0). Epsilon prediction only.
 */
import type { SchedulerName, TimestepSpacing } from '../protocol';
import {
  alphasCumprod,
  interpIndex,
  karrasSigmas,
  logF32,
  makeBetas,
  npArange,
  npLinspace,
  roundHalfEven,
  sigmaToT,
  trainSigmas,
  type SchedulerConfig,
} from './scheduler-math';

export type { SchedulerConfig } from './scheduler-math';

export const SCHEDULER_NAMES: readonly SchedulerName[] = ['euler', 'euler-a', 'dpmpp-2m', 'dpmpp-2m-karras', 'ddim'];
export const TIMESTEP_SPACINGS: readonly TimestepSpacing[] = ['leading', 'trailing', 'linspace'];

export interface SchedulerOptions {
  /** Overrides the config's `timestep_spacing`. */
  timestepSpacing?: TimestepSpacing;
  /** Karras sigmas for `euler` (default: the config's `use_karras_sigmas`). */
  karras?: boolean;
  /**
   * The first step that runs (image-to-image starts part-way: diffusers' `set_begin_index`); DPM++ 2M
   * takes a first-order step there, as it has no history yet. Default 0.
   */
  beginIndex?: number;
}

/** One step as a linear combination (see the file comment). */
export interface StepCoefficients {
  sample: number;
  modelOutput: number;
  prevX0: number;
  noise: number;
  x0Sample: number;
  x0ModelOutput: number;
}

export interface Scheduler {
  readonly name: SchedulerName;
  /** Number of denoising steps (= timesteps.length). */
  readonly numSteps: number;
  /** What the U-Net gets at each step (integers for DPM/DDIM, fractional for Karras Euler / linspace). */
  readonly timesteps: Float32Array;
  /**
   * Noise level per step plus the final one (length numSteps + 1), in the VE convention
   * sigma = sqrt((1 - alpha_bar) / alpha_bar). For DDIM: that value at each timestep and at the
   * final alpha_bar.
   */
  readonly sigmas: Float32Array;
  /** Multiply the unit-variance initial noise by this. */
  readonly initNoiseSigma: number;
  /** diffusers' `scheduler.order` (1 for all of these: one model call per step). */
  readonly order: number;
  /** True when step(i) needs a standard-normal noise tensor (ancestral sampling). */
  readonly needsNoise: boolean;
  /** True when a step uses the previous step's x0 (keep it between steps on the GPU). */
  readonly usesHistory: boolean;
  /** `scale_model_input` multiplier for step i: the U-Net gets sample · scaleFactor(i). */
  scaleFactor(i: number): number;
  stepCoefficients(i: number): StepCoefficients;
  /**
   * diffusers' `add_noise` at step i's noise level: noisy = original·a + noise·b (Euler: a = 1, b = sigma;
   * DPM++ and DDIM work on the variance-preserving latent: a = alpha, b = sigma·alpha).
   */
  noiseCoefficients(i: number): { original: number; noise: number };
  /** Predicted x0 from this step's model output. */
  predictX0(i: number, modelOutput: Float32Array, sample: Float32Array): Float32Array;
  /** prev_sample of step i. Steps must run in order 0, 1, … when usesHistory. */
  step(i: number, modelOutput: Float32Array, sample: Float32Array, noise?: Float32Array): Float32Array;
  /** Forget the history (start a new generation with the same tables). */
  reset(): void;
}

const f32 = Math.fround;

/** Order of the coefficients in {@link packCoefficients}: the helper graph's `coefficients` input. */
export const COEFFICIENT_ORDER = ['sample', 'modelOutput', 'prevX0', 'noise', 'x0Sample', 'x0ModelOutput'] as const;

/**
 * The six coefficients of a step as a float32 vector in {@link COEFFICIENT_ORDER}, for a GPU helper
 * graph with inputs (sample, modelOutput, prevX0, noise, coefficients[6]) and outputs
 * (prev = c0·sample + c1·modelOutput + c2·prevX0 + c3·noise, x0 = c4·sample + c5·modelOutput):
 * one graph serves every step and scheduler; only this small tensor changes per step.
 */
export function packCoefficients(c: StepCoefficients): Float32Array {
  return Float32Array.from(COEFFICIENT_ORDER.map((k) => c[k]));
}

/** Parse scheduler_config.json text; accepts Python's `Infinity`/`-Infinity`/`NaN` tokens. */
export function parseSchedulerConfig(text: string, where = 'scheduler/scheduler_config.json'): SchedulerConfig {
  try {
    const fixed = text.replace(/(:\s*)(-?Infinity|NaN)(\s*[,}\]])/g, (_m, a: string, v: string, b: string) => `${a}"${v}"${b}`);
    const obj = JSON.parse(fixed) as unknown;
    if (!obj || typeof obj !== 'object' || Array.isArray(obj)) throw new Error('not a JSON object');
    const cfg = obj as Record<string, unknown>;
    for (const [k, v] of Object.entries(cfg)) {
      if (v === 'Infinity') cfg[k] = Infinity;
      else if (v === '-Infinity') cfg[k] = -Infinity;
      else if (v === 'NaN') cfg[k] = NaN;
    }
    return cfg as SchedulerConfig;
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`);
  }
}

interface Tables {
  n: number;
  acp: Float32Array;
  sigmas: Float32Array;
  logSigmas: Float32Array;
}

function tables(cfg: SchedulerConfig, where: string): Tables {
  const acp = alphasCumprod(makeBetas(cfg, where));
  const sigmas = trainSigmas(acp);
  return { n: acp.length, acp, sigmas, logSigmas: logF32(sigmas) };
}

function checkConfig(cfg: SchedulerConfig, where: string): void {
  const pred = cfg.prediction_type ?? 'epsilon';
  if (pred !== 'epsilon') {
    throw new Error(`${where}: prediction_type "${pred}" is not supported; only "epsilon" models are (SDXL-family checkpoints)`);
  }
  if (cfg.rescale_betas_zero_snr) throw new Error(`${where}: rescale_betas_zero_snr=true is not supported`);
  if (cfg.timestep_type !== undefined && cfg.timestep_type !== 'discrete') {
    throw new Error(`${where}: timestep_type "${String(cfg.timestep_type)}" is not supported (expected "discrete")`);
  }
  if (cfg.interpolation_type !== undefined && cfg.interpolation_type !== 'linear') {
    throw new Error(`${where}: interpolation_type "${String(cfg.interpolation_type)}" is not supported (expected "linear")`);
  }
  if (cfg.thresholding) throw new Error(`${where}: thresholding=true is not supported`);
}

function spacingOf(cfg: SchedulerConfig, opts: SchedulerOptions, classDefault: TimestepSpacing, where: string): TimestepSpacing {
  const s = opts.timestepSpacing ?? (cfg.timestep_spacing as string | undefined) ?? classDefault;
  if (!(TIMESTEP_SPACINGS as readonly string[]).includes(s)) {
    throw new Error(`${where}: timestep_spacing "${s}" is not supported (expected one of ${TIMESTEP_SPACINGS.join(', ')})`);
  }
  return s as TimestepSpacing;
}

/** EulerDiscrete / EulerAncestral / DDIM timesteps (float64 values before the final cast). */
function eulerTimesteps(spacing: TimestepSpacing, N: number, n: number, offset: number): Float64Array {
  if (spacing === 'linspace') return npLinspace(0, N - 1, n).reverse();
  if (spacing === 'leading') {
    const ratio = Math.floor(N / n);
    const t = new Float64Array(n);
    for (let i = 0; i < n; i++) t[i] = (n - 1 - i) * ratio + offset;
    return t;
  }
  const t = npArange(N, 0, -N / n);
  for (let i = 0; i < t.length; i++) t[i] = roundHalfEven(t[i]!) - 1;
  return t;
}

function maxOf(a: Float32Array): number {
  let m = -Infinity;
  for (const v of a) if (v > m) m = v;
  return m;
}

/** `(max_sigma**2 + 1) ** 0.5` in float32. */
function sqrtSigmaSqPlus1(s: number): number {
  return f32(Math.sqrt(f32(f32(s * s) + 1)));
}

class LinearScheduler implements Scheduler {
  readonly numSteps: number;
  private prevX0: Float32Array | null = null;
  private lastStep = -1;

  constructor(
    readonly name: SchedulerName,
    readonly timesteps: Float32Array,
    readonly sigmas: Float32Array,
    readonly initNoiseSigma: number,
    private readonly scales: Float64Array,
    private readonly coeffs: StepCoefficients[],
    readonly needsNoise: boolean,
    /** Variance-preserving latents (DPM++, DDIM): add_noise scales the original by alpha. */
    private readonly vp = false,
  ) {
    this.numSteps = timesteps.length;
  }

  noiseCoefficients(i: number): { original: number; noise: number } {
    this.check(i);
    const s = this.sigmas[i]!;
    if (!this.vp) return { original: 1, noise: s };
    const alpha = f32(1 / f32(Math.sqrt(f32(s * s + 1))));
    return { original: alpha, noise: f32(s * alpha) };
  }

  readonly order = 1;

  get usesHistory(): boolean {
    return this.coeffs.some((c) => c.prevX0 !== 0);
  }

  private check(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.numSteps) {
      throw new RangeError(`${this.name}: step index ${i} out of range 0..${this.numSteps - 1}`);
    }
  }

  scaleFactor(i: number): number {
    this.check(i);
    return this.scales[i]!;
  }

  stepCoefficients(i: number): StepCoefficients {
    this.check(i);
    return { ...this.coeffs[i]! };
  }

  predictX0(i: number, modelOutput: Float32Array, sample: Float32Array): Float32Array {
    this.check(i);
    const { x0Sample: p, x0ModelOutput: q } = this.coeffs[i]!;
    if (modelOutput.length !== sample.length) {
      throw new Error(`${this.name}: model output has ${modelOutput.length} values, sample has ${sample.length}`);
    }
    const out = new Float32Array(sample.length);
    for (let k = 0; k < out.length; k++) out[k] = p * sample[k]! + q * modelOutput[k]!;
    return out;
  }

  step(i: number, modelOutput: Float32Array, sample: Float32Array, noise?: Float32Array): Float32Array {
    this.check(i);
    const c = this.coeffs[i]!;
    const len = sample.length;
    if (modelOutput.length !== len) throw new Error(`${this.name}: model output has ${modelOutput.length} values, sample has ${len}`);
    if (c.noise !== 0 || (this.needsNoise && noise)) {
      if (!noise) throw new Error(`${this.name}: step ${i} needs a noise tensor (ancestral sampler)`);
      if (noise.length !== len) throw new Error(`${this.name}: noise has ${noise.length} values, sample has ${len}`);
    }
    let prev: Float32Array | null = null;
    if (c.prevX0 !== 0) {
      if (!this.prevX0 || this.lastStep !== i - 1 || this.prevX0.length !== len) {
        throw new Error(`${this.name}: step ${i} needs step ${i - 1}'s x0; run the steps in order from 0 (or reset())`);
      }
      prev = this.prevX0;
    }
    const out = new Float32Array(len);
    const x0 = new Float32Array(len);
    const { sample: a, modelOutput: b, prevX0: cc, noise: d, x0Sample: p, x0ModelOutput: q } = c;
    for (let k = 0; k < len; k++) {
      const x = sample[k]!;
      const e = modelOutput[k]!;
      let v = a * x + b * e;
      if (prev) v += cc * prev[k]!;
      if (d !== 0) v += d * noise![k]!;
      out[k] = v;
      x0[k] = p * x + q * e;
    }
    this.prevX0 = x0;
    this.lastStep = i;
    return out;
  }

  reset(): void {
    this.prevX0 = null;
    this.lastStep = -1;
  }
}

function eulerLike(
  name: 'euler' | 'euler-a',
  cfg: SchedulerConfig,
  n: number,
  opts: SchedulerOptions,
  where: string,
): Scheduler {
  const T = tables(cfg, where);
  const spacing = spacingOf(cfg, opts, 'linspace', where);
  // diffusers casts the timesteps to float32 before interpolating the sigmas
  const ts = eulerTimesteps(spacing, T.n, n, cfg.steps_offset ?? 0).map(f32);
  let sig: number[] = Array.from(ts, (t) => interpIndex(t, T.sigmas));
  let times = Array.from(ts);
  const karras = name === 'euler' ? (opts.karras ?? !!cfg.use_karras_sigmas) : false;
  if (name === 'euler-a' && opts.karras) throw new Error(`${where}: Karras sigmas are not available for euler-a`);
  if (karras) {
    const lo = cfg.sigma_min ?? sig[sig.length - 1]!;
    const hi = cfg.sigma_max ?? sig[0]!;
    sig = Array.from(karrasSigmas(lo, hi, sig.length));
    times = sig.map((s) => sigmaToT(s, T.logSigmas));
  }
  const finalType = name === 'euler' ? ((cfg.final_sigmas_type as string | undefined) ?? 'zero') : 'zero';
  let last = 0;
  if (finalType === 'sigma_min') last = T.sigmas[0]!;
  else if (finalType !== 'zero') throw new Error(`${where}: final_sigmas_type "${finalType}" is not supported (zero or sigma_min)`);
  const sigmas = Float32Array.from([...sig, last]);
  const timesteps = Float32Array.from(times);
  const m = maxOf(sigmas);
  const initNoiseSigma = spacing === 'leading' ? sqrtSigmaSqPlus1(m) : m;
  const steps = timesteps.length;
  const scales = new Float64Array(steps);
  const coeffs: StepCoefficients[] = [];
  for (let i = 0; i < steps; i++) {
    const s = sigmas[i]!;
    const sn = sigmas[i + 1]!;
    scales[i] = 1 / sqrtSigmaSqPlus1(s);
    if (name === 'euler') {
      // x0 = x - s·eps; d = (x - x0)/s; prev = x + d·(s' - s)
      coeffs.push({ sample: 1, modelOutput: f32(sn - s), prevX0: 0, noise: 0, x0Sample: 1, x0ModelOutput: -s });
    } else {
      const up = f32(Math.sqrt(f32(f32(f32(sn * sn) * f32(f32(s * s) - f32(sn * sn))) / f32(s * s))));
      const down = f32(Math.sqrt(f32(f32(sn * sn) - f32(up * up))));
      coeffs.push({ sample: 1, modelOutput: f32(down - s), prevX0: 0, noise: up, x0Sample: 1, x0ModelOutput: -s });
    }
  }
  return new LinearScheduler(name, timesteps, sigmas, initNoiseSigma, scales, coeffs, name === 'euler-a');
}

function expectSetting(cfg: SchedulerConfig, key: string, allowed: unknown[], where: string): void {
  const v = cfg[key];
  if (v !== undefined && v !== null && !allowed.includes(v)) {
    throw new Error(`${where}: ${key} ${JSON.stringify(v)} is not supported for DPM++ 2M (expected ${allowed.map((a) => JSON.stringify(a)).join(' or ')})`);
  }
}

function dpmpp2m(name: 'dpmpp-2m' | 'dpmpp-2m-karras', cfg: SchedulerConfig, n: number, opts: SchedulerOptions, where: string): Scheduler {
  const dpmCfg = cfg._class_name === 'DPMSolverMultistepScheduler';
  if (dpmCfg) {
    expectSetting(cfg, 'algorithm_type', ['dpmsolver++'], where);
    expectSetting(cfg, 'solver_type', ['midpoint'], where);
    expectSetting(cfg, 'solver_order', [1, 2], where);
    expectSetting(cfg, 'use_lu_lambdas', [false], where);
  }
  if (typeof cfg.lambda_min_clipped === 'number' && cfg.lambda_min_clipped !== -Infinity) {
    throw new Error(`${where}: lambda_min_clipped ${cfg.lambda_min_clipped} is not supported (only -inf)`);
  }
  const order = dpmCfg && cfg.solver_order === 1 ? 1 : 2;
  const lowerOrderFinal = dpmCfg ? cfg.lower_order_final !== false : true;
  const eulerAtFinal = dpmCfg ? cfg.euler_at_final === true : false;
  const finalType = dpmCfg ? ((cfg.final_sigmas_type as string | undefined) ?? 'zero') : 'zero';
  const T = tables(cfg, where);
  const N = T.n;
  const spacing = spacingOf(cfg, opts, 'linspace', where);
  const offset = cfg.steps_offset ?? 0;
  let ts: number[];
  if (spacing === 'linspace') {
    ts = Array.from(npLinspace(0, N - 1, n + 1), roundHalfEven).reverse().slice(0, n);
  } else if (spacing === 'leading') {
    const ratio = Math.floor(N / (n + 1));
    ts = [];
    for (let i = n; i >= 1; i--) ts.push(i * ratio + offset);
  } else {
    ts = Array.from(npArange(N, 0, -N / n), (t) => roundHalfEven(t) - 1);
  }
  let sig: number[];
  if (name === 'dpmpp-2m-karras') {
    const lo = cfg.sigma_min ?? T.sigmas[0]!;
    const hi = cfg.sigma_max ?? T.sigmas[N - 1]!;
    sig = Array.from(karrasSigmas(lo, hi, n));
    ts = sig.map((s) => roundHalfEven(sigmaToT(s, T.logSigmas)));
  } else {
    sig = ts.map((t) => interpIndex(t, T.sigmas));
  }
  let last = 0;
  if (finalType === 'sigma_min') last = T.sigmas[0]!;
  else if (finalType !== 'zero') throw new Error(`${where}: final_sigmas_type "${finalType}" is not supported (zero or sigma_min)`);
  const sigmas = Float32Array.from([...sig, last]);
  const timesteps = Float32Array.from(ts);
  const steps = timesteps.length;
  // float32 scalars exactly as diffusers' _sigma_to_alpha_sigma_t and lambda computation
  const alpha = (s: number) => f32(1 / f32(Math.sqrt(f32(f32(s * s) + 1))));
  const sigt = (s: number) => f32(s * alpha(s));
  const lambda = (s: number) => f32(f32(Math.log(alpha(s))) - f32(Math.log(sigt(s))));
  const coeffs: StepCoefficients[] = [];
  const scales = new Float64Array(steps).fill(1);
  for (let i = 0; i < steps; i++) {
    const s0 = sigmas[i]!;
    const st = sigmas[i + 1]!;
    const a0 = alpha(s0);
    const g0 = sigt(s0);
    const at = alpha(st);
    const gt = sigt(st);
    // x0 = (x - sigma_t·eps) / alpha_t
    const p = 1 / a0;
    const q = -g0 / a0;
    const h = f32(lambda(st) - lambda(s0));
    const K = -f32(at * f32(f32(Math.exp(-h)) - 1)); // -(alpha_t·(exp(-h) - 1))
    const ratio = f32(gt / g0);
    const isLast = i === steps - 1;
    const lowerFinal = isLast && (eulerAtFinal || (lowerOrderFinal && steps < 15) || finalType === 'zero');
    if (order === 1 || i < (opts.beginIndex ?? 0) + 1 || lowerFinal) {
      // x_t = (sigma_t/sigma_s)·x + K·x0
      coeffs.push({ sample: ratio + K * p, modelOutput: K * q, prevX0: 0, noise: 0, x0Sample: p, x0ModelOutput: q });
    } else {
      const s1 = sigmas[i - 1]!;
      const h0 = f32(lambda(s0) - lambda(s1));
      const r0 = f32(h0 / h);
      const invR0 = f32(1 / r0);
      // x_t = ratio·x + K·D0 + 0.5·K·D1, D0 = m0, D1 = (m0 - m1)/r0
      const w0 = K + 0.5 * K * invR0;
      const w1 = -0.5 * K * invR0;
      coeffs.push({ sample: ratio + w0 * p, modelOutput: w0 * q, prevX0: w1, noise: 0, x0Sample: p, x0ModelOutput: q });
    }
  }
  return new LinearScheduler(name, timesteps, sigmas, 1, scales, coeffs, false, true);
}

function ddim(cfg: SchedulerConfig, n: number, opts: SchedulerOptions, where: string): Scheduler {
  if (cfg.clip_sample === true && cfg._class_name === 'DDIMScheduler') {
    throw new Error(`${where}: clip_sample=true is not supported for DDIM`);
  }
  const T = tables(cfg, where);
  const N = T.n;
  const spacing = spacingOf(cfg, opts, 'leading', where);
  const raw = eulerTimesteps(spacing, N, n, cfg.steps_offset ?? 0);
  const ts = Array.from(raw, (t) => (spacing === 'linspace' ? roundHalfEven(t) : t));
  const finalAcp = cfg.set_alpha_to_one === false ? T.acp[0]! : 1;
  const ratio = Math.floor(N / n);
  const acpAt = (t: number) => {
    if (t < 0) return finalAcp;
    if (t >= N) throw new Error(`${where}: timestep ${t} is outside the ${N} training steps`);
    return T.acp[t]!;
  };
  const coeffs: StepCoefficients[] = [];
  const sig: number[] = [];
  for (const t of ts) {
    const at = acpAt(t);
    const ap = acpAt(t - ratio);
    const sa = f32(Math.sqrt(at));
    const sb = f32(Math.sqrt(f32(1 - at)));
    const sap = f32(Math.sqrt(ap));
    const dir = f32(Math.sqrt(f32(1 - ap)));
    // x0 = (x - sqrt(1-a_t)·eps)/sqrt(a_t); prev = sqrt(a_prev)·x0 + sqrt(1-a_prev)·eps
    const p = 1 / sa;
    const q = -sb / sa;
    coeffs.push({ sample: sap * p, modelOutput: sap * q + dir, prevX0: 0, noise: 0, x0Sample: p, x0ModelOutput: q });
    sig.push(Math.sqrt((1 - at) / at));
  }
  sig.push(Math.sqrt((1 - acpAt(ts[ts.length - 1]! - ratio)) / acpAt(ts[ts.length - 1]! - ratio)));
  const timesteps = Float32Array.from(ts);
  const scales = new Float64Array(timesteps.length).fill(1);
  return new LinearScheduler('ddim', timesteps, Float32Array.from(sig), 1, scales, coeffs, false, true);
}

/**
 * Build a scheduler from the repo's scheduler_config.json (any diffusers scheduler class's config:
 * shared keys such as betas, steps_offset and timestep_spacing carry over, as `from_config` does).
 */
export function createScheduler(
  name: string,
  schedulerConfig: SchedulerConfig,
  numSteps: number,
  options: SchedulerOptions = {},
): Scheduler {
  const where = 'scheduler/scheduler_config.json';
  if (!(SCHEDULER_NAMES as readonly string[]).includes(name)) {
    throw new Error(`Unknown scheduler "${name}": expected one of ${SCHEDULER_NAMES.join(', ')}`);
  }
  if (!Number.isInteger(numSteps) || numSteps < 1 || numSteps > 1000) {
    throw new Error(`Number of steps must be an integer from 1 to 1000, got ${numSteps}`);
  }
  if (!schedulerConfig || typeof schedulerConfig !== 'object') throw new Error(`${where}: expected a JSON object`);
  const N = schedulerConfig.num_train_timesteps ?? 1000;
  if (numSteps > N) throw new Error(`Number of steps (${numSteps}) cannot exceed num_train_timesteps (${N})`);
  checkConfig(schedulerConfig, where);
  switch (name as SchedulerName) {
    case 'euler':
    case 'euler-a':
      return eulerLike(name as 'euler' | 'euler-a', schedulerConfig, numSteps, options, where);
    case 'dpmpp-2m':
    case 'dpmpp-2m-karras':
      return dpmpp2m(name as 'dpmpp-2m' | 'dpmpp-2m-karras', schedulerConfig, numSteps, options, where);
    case 'ddim':
      return ddim(schedulerConfig, numSteps, options, where);
  }
}
