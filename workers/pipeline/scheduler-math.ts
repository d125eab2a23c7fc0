/**
 * Noise-schedule tables shared by the schedulers, reproducing diffusers' (0.30) numbers:
 * torch float32 where diffusers computes in torch float32 (betas, alphas_cumprod, sigma table),
 * numpy float64 where it uses numpy (timestep spacing, interpolation, Karras sigmas), with
 * numpy's rounding rules (`np.round` rounds half to even; `np.arange`/`np.linspace` element formulas).
 */

const f32 = Math.fround;

/** The parts of a diffusers `scheduler_config.json` the schedulers read (all optional). */
export interface SchedulerConfig {
  _class_name?: string;
  num_train_timesteps?: number;
  beta_start?: number;
  beta_end?: number;
  beta_schedule?: string;
  trained_betas?: number[] | null;
  prediction_type?: string;
  timestep_spacing?: string;
  steps_offset?: number;
  set_alpha_to_one?: boolean;
  use_karras_sigmas?: boolean;
  interpolation_type?: string;
  final_sigmas_type?: string;
  timestep_type?: string;
  rescale_betas_zero_snr?: boolean;
  clip_sample?: boolean;
  thresholding?: boolean;
  sigma_min?: number | null;
  sigma_max?: number | null;
  [key: string]: unknown;
}

/** numpy's `np.round`: round half to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  if (Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0) return r - 1;
  return r;
}

/**
 * `torch.linspace(start, end, steps, dtype=float32)` bit-exactly as torch's x86 CPU kernel computes it:
 * float32 step; index i < steps/2 counts up from start, the rest down from end; the AVX2 path
 * fills vectors of 8 lanes as `base + lane * step` from a base `start + step * idx` (or
 * `end - step * (steps - idx - 1)`) computed with a fused multiply-add. Matches the betas
 * diffusers stored in the goldens bit for bit (a plain per-element formula is off by 1 ulp in
 * about a quarter of them).
 */
export function torchLinspaceF32(start: number, end: number, steps: number): Float32Array {
  const out = new Float32Array(steps);
  const s = f32(start);
  const e = f32(end);
  if (steps === 1) {
    out[0] = s;
    return out;
  }
  const step = f32((e - s) / (steps - 1));
  const halfway = Math.floor(steps / 2);
  const lanes = 8;
  for (let idx = 0; idx < steps; idx += lanes) {
    // float32 step * small integer is exact in float64, so one rounding = the fused multiply-add
    const base = idx < halfway ? f32(s + step * idx) : f32(e - step * (steps - idx - 1));
    for (let j = 0; j < lanes && idx + j < steps; j++) out[idx + j] = f32(base + j * step);
  }
  return out;
}

/** `np.linspace(start, stop, num)` in float64 (endpoint included). */
export function npLinspace(start: number, stop: number, num: number): Float64Array {
  const out = new Float64Array(num);
  const div = num - 1;
  const delta = stop - start;
  const step = div > 0 ? delta / div : NaN;
  for (let i = 0; i < num; i++) {
    out[i] = div > 0 ? (step === 0 ? (i / div) * delta : i * step) + start : i * delta + start;
  }
  if (num > 1) out[num - 1] = stop;
  return out;
}

/** `np.arange(start, stop, step)` in float64 (numpy's length and fill rule). */
export function npArange(start: number, stop: number, step: number): Float64Array {
  const len = Math.max(0, Math.ceil((stop - start) / step));
  const out = new Float64Array(len);
  if (len === 0) return out;
  out[0] = start;
  if (len > 1) {
    const delta = start + step - start;
    for (let i = 1; i < len; i++) out[i] = start + i * delta;
  }
  return out;
}

/** `np.interp(x, arange(len(fp)), fp)`. */
export function interpIndex(x: number, fp: ArrayLike<number>): number {
  const n = fp.length;
  if (x <= 0) return fp[0]!;
  if (x >= n - 1) return fp[n - 1]!;
  const j = Math.floor(x);
  if (x === j) return fp[j]!;
  const slope = fp[j + 1]! - fp[j]!;
  return slope * (x - j) + fp[j]!;
}

/** betas (float32) from the config: `scaled_linear`, `linear`, `squaredcos_cap_v2` or `trained_betas`. */
export function makeBetas(cfg: SchedulerConfig, where: string): Float32Array {
  const n = cfg.num_train_timesteps ?? 1000;
  if (!Number.isInteger(n) || n < 2) throw new Error(`${where}: num_train_timesteps must be an integer >= 2, found ${n}`);
  if (Array.isArray(cfg.trained_betas)) {
    if (cfg.trained_betas.length !== n) {
      throw new Error(`${where}: trained_betas has ${cfg.trained_betas.length} values, num_train_timesteps is ${n}`);
    }
    return Float32Array.from(cfg.trained_betas);
  }
  const start = cfg.beta_start ?? 0.0001;
  const end = cfg.beta_end ?? 0.02;
  const schedule = cfg.beta_schedule ?? 'linear';
  switch (schedule) {
    case 'linear':
      return torchLinspaceF32(start, end, n);
    case 'scaled_linear': {
      const b = torchLinspaceF32(Math.sqrt(start), Math.sqrt(end), n);
      for (let i = 0; i < n; i++) b[i] = f32(b[i]! * b[i]!);
      return b;
    }
    case 'squaredcos_cap_v2': {
      const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * Math.PI * 0.5) ** 2;
      const b = new Float32Array(n);
      for (let i = 0; i < n; i++) b[i] = Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), 0.999);
      return b;
    }
    default:
      throw new Error(
        `${where}: beta_schedule "${schedule}" is not supported (expected scaled_linear, linear or squaredcos_cap_v2)`,
      );
  }
}

/**
 * `torch.cumprod(1 - betas, 0)` of a float32 tensor: torch's CPU kernel accumulates in float64 and
 * rounds each output to float32 (bit-exact against the goldens; a float32 accumulator is not).
 */
export function alphasCumprod(betas: Float32Array): Float32Array {
  const out = new Float32Array(betas.length);
  let acc = 1;
  for (let i = 0; i < betas.length; i++) {
    acc *= f32(1 - betas[i]!);
    out[i] = acc;
  }
  return out;
}

/** `((1 - acp) / acp) ** 0.5` in float32: the VE sigma of every training timestep. */
export function trainSigmas(acp: Float32Array): Float32Array {
  const out = new Float32Array(acp.length);
  for (let i = 0; i < acp.length; i++) out[i] = f32(Math.sqrt(f32(f32(1 - acp[i]!) / acp[i]!)));
  return out;
}

/** Karras et al. (2022) sigmas, `_convert_to_karras` with rho 7. */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, n: number): Float64Array {
  const rho = 7;
  const ramp = npLinspace(0, 1, n);
  const minInv = sigmaMin ** (1 / rho);
  const maxInv = sigmaMax ** (1 / rho);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = (maxInv + ramp[i]! * (minInv - maxInv)) ** rho;
  return out;
}

/** `_sigma_to_t`: fractional training timestep of a sigma, interpolating log sigmas (float32 table). */
export function sigmaToT(sigma: number, logSigmas: Float32Array): number {
  const logSigma = Math.log(Math.max(sigma, 1e-10));
  const n = logSigmas.length;
  // last index whose log sigma <= log_sigma (cumsum(dists >= 0).argmax()), clipped to n - 2
  let low = 0;
  for (let i = 0; i < n; i++) if (logSigma - logSigmas[i]! >= 0) low = i;
  low = Math.min(low, n - 2);
  const lo = logSigmas[low]!;
  const hi = logSigmas[low + 1]!;
  let w = (lo - logSigma) / (lo - hi);
  w = Math.min(1, Math.max(0, w));
  return (1 - w) * low + w * (low + 1);
}

/** `np.log` of a float32 array (float32 result). */
export function logF32(a: Float32Array): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = Math.log(a[i]!);
  return out;
}
