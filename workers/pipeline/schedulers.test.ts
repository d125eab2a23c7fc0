import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readSafetensorsHeader, readTensorF32, type SafetensorsFile } from '../model/safetensors';
import { fileSource } from '../model/safetensors.node';
import { createScheduler, packCoefficients, parseSchedulerConfig, SCHEDULER_NAMES, type Scheduler, type SchedulerOptions } from './schedulers';
import { alphasCumprod, makeBetas } from './scheduler-math';

const root = join(__dirname, '../../test/fixtures');

/** golden kind -> how we build it */
const KINDS: Record<string, { name: string; opts: SchedulerOptions }> = {
  euler: { name: 'euler', opts: {} },
  euler_trailing: { name: 'euler', opts: { timestepSpacing: 'trailing' } },
  euler_karras: { name: 'euler', opts: { karras: true } },
  euler_ancestral: { name: 'euler-a', opts: {} },
  dpmpp_2m: { name: 'dpmpp-2m', opts: {} },
  dpmpp_2m_karras: { name: 'dpmpp-2m-karras', opts: {} },
  ddim: { name: 'ddim', opts: {} },
};

function relClose(actual: ArrayLike<number>, expected: number[], rel: number, what: string): void {
  expect(actual.length, `${what} length`).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i]!;
    const err = Math.abs(actual[i]! - e) / Math.max(Math.abs(e), 1e-30);
    if (!(err <= rel || Math.abs(actual[i]! - e) === 0)) {
      throw new Error(`${what}[${i}]: got ${actual[i]}, expected ${e} (relative error ${err})`);
    }
  }
}

const config = parseSchedulerConfig(readFileSync(join(root, 'tiny-sdxl/scheduler/scheduler_config.json'), 'utf8'));

describe('scheduler tables vs diffusers (schedulers.json)', () => {
  const golden = parseSchedulerConfig(readFileSync(join(root, 'tiny-sdxl/goldens/schedulers.json'), 'utf8')) as unknown as {
    betas: number[];
    alphas_cumprod: number[];
    schedulers: Record<string, { steps: Record<string, { timesteps: number[]; sigmas?: number[]; init_noise_sigma: number; alphas_cumprod_at_timesteps?: number[]; final_alpha_cumprod?: number }> }>;
  };

  it('betas and alphas_cumprod are bit-exact', () => {
    const betas = makeBetas(config, 'test');
    const acp = alphasCumprod(betas);
    expect(Array.from(betas)).toEqual(golden.betas.map(Math.fround));
    expect(Array.from(acp)).toEqual(golden.alphas_cumprod.map(Math.fround));
  });

  for (const [kind, how] of Object.entries(KINDS)) {
    it(`${kind}: timesteps, sigmas, init_noise_sigma for every n`, () => {
      const steps = golden.schedulers[kind]!.steps;
      expect(Object.keys(steps).length).toBeGreaterThan(5);
      for (const [n, g] of Object.entries(steps)) {
        const s = createScheduler(how.name, config, Number(n), how.opts);
        relClose(s.timesteps, g.timesteps, 1e-6, `${kind} n=${n} timesteps`);
        if (g.sigmas) relClose(s.sigmas, g.sigmas, 1e-6, `${kind} n=${n} sigmas`);
        relClose([s.initNoiseSigma], [g.init_noise_sigma], 1e-6, `${kind} n=${n} init_noise_sigma`);
        expect(s.numSteps).toBe(Number(n));
        if (g.alphas_cumprod_at_timesteps) {
          // DDIM: sigmas are sqrt((1 - a)/a) of the alphas at the timesteps, then the final alpha
          const acp = [...g.alphas_cumprod_at_timesteps, g.final_alpha_cumprod!];
          relClose(s.sigmas, acp.map((a) => Math.sqrt((1 - a) / a)), 1e-6, `${kind} n=${n} sigmas from alphas`);
        }
      }
    });
  }

  it('matches REFERENCE.md check values', () => {
    const s = createScheduler('euler', config, 25);
    expect(s.timesteps[0]).toBe(961);
    expect(s.timesteps[1]).toBe(921);
    expect(s.timesteps[24]).toBe(1);
    expect(s.initNoiseSigma).toBeCloseTo(11.7188, 4);
    const t = createScheduler('euler', config, 10, { timestepSpacing: 'trailing' });
    expect(Array.from(t.timesteps)).toEqual([999, 899, 799, 699, 599, 499, 399, 299, 199, 99]);
    expect(t.initNoiseSigma).toBeCloseTo(14.6146, 4);
  });
});

interface StepCase {
  prefix: string;
  scheduler: string;
  num_inference_steps: number;
}

for (const fixture of ['tiny-sdxl', 'tiny-koala']) {
  describe(`scheduler step() vs diffusers (${fixture} scheduler_steps.safetensors)`, () => {
    let file: SafetensorsFile;
    const cases = (JSON.parse(readFileSync(join(root, fixture, 'goldens/cases.json'), 'utf8')) as { scheduler_steps: StepCase[] })
      .scheduler_steps;
    beforeAll(async () => {
      file = await readSafetensorsHeader(fileSource(join(root, fixture, 'goldens/scheduler_steps.safetensors')));
    });

    it('has cases', () => expect(cases.length).toBeGreaterThanOrEqual(6));

    for (const c of cases) {
      it(`${c.prefix}`, async () => {
        const how = KINDS[c.scheduler];
        if (!how) throw new Error(`no mapping for golden scheduler kind ${c.scheduler}`);
        const n = c.num_inference_steps;
        const s: Scheduler = createScheduler(how.name, config, n, how.opts);
        const t = (name: string) => readTensorF32(file, `${c.prefix}.${name}`);
        const [timesteps, noise, outs, prevs, scaled] = await Promise.all([
          t('timesteps'), t('noise'), t('model_outputs'), t('prev_samples'), t('scaled_inputs'),
        ]);
        relClose(s.timesteps, Array.from(timesteps), 1e-6, `${c.prefix} timesteps`);
        const len = noise.length;
        const at = (a: Float32Array, j: number) => a.subarray(j * len, (j + 1) * len);
        let maxStep = 0;
        let maxChain = 0;
        let maxScale = 0;
        let maxRef = 0;
        let maxGpu = 0;
        let gpuX0: Float32Array | null = null;
        // (1) each step from the golden input sample; (2) the chained loop from the initial noise
        let chained: Float32Array = Float32Array.from(noise, (v) => v * s.initNoiseSigma);
        const chainedScheduler = createScheduler(how.name, config, n, how.opts);
        for (let j = 0; j < n; j++) {
          const sample = j === 0 ? Float32Array.from(noise, (v) => v * s.initNoiseSigma) : at(prevs, j - 1);
          const stepNoise = s.needsNoise ? await t(`step_noise.${String(j).padStart(2, '0')}`) : undefined;
          const sf = s.scaleFactor(j);
          for (let k = 0; k < len; k++) maxScale = Math.max(maxScale, Math.abs(sample[k]! * sf - at(scaled, j)[k]!));
          // GPU-style: float32 coefficients, float32 arithmetic, previous x0 kept between steps
          const cv = packCoefficients(s.stepCoefficients(j));
          const f = Math.fround;
          const eps = at(outs, j);
          for (let k = 0; k < len; k++) {
            let v = f(f(cv[0]! * sample[k]!) + f(cv[1]! * eps[k]!));
            if (cv[2] !== 0) v = f(v + f(cv[2]! * gpuX0![k]!));
            if (cv[3] !== 0) v = f(v + f(cv[3]! * stepNoise![k]!));
            maxGpu = Math.max(maxGpu, Math.abs(v - at(prevs, j)[k]!));
          }
          gpuX0 = Float32Array.from(sample, (x, k) => f(f(cv[4]! * x) + f(cv[5]! * eps[k]!)));
          const out = s.step(j, at(outs, j), sample, stepNoise);
          chained = chainedScheduler.step(j, at(outs, j), chained, stepNoise);
          const ref = at(prevs, j);
          for (let k = 0; k < len; k++) {
            maxStep = Math.max(maxStep, Math.abs(out[k]! - ref[k]!));
            maxChain = Math.max(maxChain, Math.abs(chained[k]! - ref[k]!));
            maxRef = Math.max(maxRef, Math.abs(ref[k]!));
          }
        }
        expect(maxScale, 'scale_model_input').toBeLessThanOrEqual(1e-5);
        expect(maxStep, 'single steps').toBeLessThanOrEqual(1e-5);
        expect(maxGpu, 'float32 coefficient evaluation').toBeLessThanOrEqual(Math.max(1e-5, 1e-6 * maxRef));
        expect(maxChain, 'chained loop').toBeLessThanOrEqual(Math.max(1e-5, 1e-6 * maxRef));
      });
    }
  });
}

describe('scheduler API', () => {
  it('image to image: add_noise coefficients per step (Euler: x + σ·n; DPM++/DDIM: α·x + σα·n) and DPM++ starting first-order at its begin index', () => {
    const e = createScheduler('euler', config, 5);
    expect(e.noiseCoefficients(2)).toEqual({ original: 1, noise: e.sigmas[2] });
    const acp = alphasCumprod(makeBetas(config, 'test'));
    const d = createScheduler('ddim', config, 5);
    const t = d.timesteps[2]!;
    expect(d.noiseCoefficients(2).original).toBeCloseTo(Math.sqrt(acp[t]!), 6);
    expect(d.noiseCoefficients(2).noise).toBeCloseTo(Math.sqrt(1 - acp[t]!), 6);
    const full = createScheduler('dpmpp-2m', config, 10);
    const late = createScheduler('dpmpp-2m', config, 10, { beginIndex: 4 });
    expect(full.stepCoefficients(4).prevX0).not.toBe(0);
    expect(late.stepCoefficients(4).prevX0).toBe(0);
    expect(late.stepCoefficients(5)).toEqual(full.stepCoefficients(5));
  });

  it('rejects unknown names, listing the valid ones', () => {
    expect(() => createScheduler('heun', config, 10)).toThrow(
      'Unknown scheduler "heun": expected one of euler, euler-a, dpmpp-2m, dpmpp-2m-karras, ddim',
    );
    expect(SCHEDULER_NAMES).toHaveLength(5);
  });

  it('rejects v-prediction and bad step counts with clear messages', () => {
    expect(() => createScheduler('euler', { ...config, prediction_type: 'v_prediction' }, 10)).toThrow(
      /prediction_type "v_prediction" is not supported; only "epsilon"/,
    );
    expect(() => createScheduler('euler', config, 0)).toThrow(/integer from 1 to 1000, got 0/);
    expect(() => createScheduler('euler', config, 2.5)).toThrow(/got 2.5/);
    expect(() => createScheduler('euler', { ...config, beta_schedule: 'sigmoid' }, 4)).toThrow(/beta_schedule "sigmoid"/);
    expect(() => createScheduler('euler', config, 4, { timestepSpacing: 'odd' as never })).toThrow(/timestep_spacing "odd"/);
  });

  it('exposes the step as coefficients, and step() follows them', () => {
    const s = createScheduler('dpmpp-2m', config, 4);
    expect(s.usesHistory).toBe(true);
    expect(s.stepCoefficients(0).prevX0).toBe(0); // first step: first order
    expect(s.stepCoefficients(1).prevX0).not.toBe(0); // second order
    expect(s.stepCoefficients(3).prevX0).toBe(0); // lower_order_final
    // the last step with final sigma 0 returns the predicted x0
    const c = s.stepCoefficients(3);
    expect(c.sample).toBeCloseTo(c.x0Sample, 6);
    expect(c.modelOutput).toBeCloseTo(c.x0ModelOutput, 6);
    const x = Float32Array.from([1, -2, 0.5]);
    const e = Float32Array.from([0.1, 0.3, -0.2]);
    expect(() => s.step(1, e, x)).toThrow(/needs step 0's x0/);
    const x1 = s.step(0, e, x);
    const c1 = s.stepCoefficients(1);
    const x0prev = s.predictX0(0, e, x);
    const x2 = s.step(1, e, x1);
    for (let k = 0; k < 3; k++) {
      expect(x2[k]).toBeCloseTo(c1.sample * x1[k]! + c1.modelOutput * e[k]! + c1.prevX0 * x0prev[k]!, 5);
    }
    s.reset();
    expect(() => s.step(1, e, x1)).toThrow(/run the steps in order/);
  });

  it('euler-a needs noise; euler does not', () => {
    const a = createScheduler('euler-a', config, 4);
    expect(a.needsNoise).toBe(true);
    const x = new Float32Array(4).fill(1);
    expect(() => a.step(0, x, x)).toThrow(/step 0 needs a noise tensor/);
    const e = createScheduler('euler', config, 4);
    expect(e.needsNoise).toBe(false);
    expect(e.stepCoefficients(0).noise).toBe(0);
    expect(a.stepCoefficients(3).noise).toBe(0); // sigma_up = 0 on the last step
  });

  it('linspace spacing follows diffusers', () => {
    const s = createScheduler('euler', config, 4, { timestepSpacing: 'linspace' });
    expect(Array.from(s.timesteps)).toEqual([999, 666, 333, 0]);
    expect(s.initNoiseSigma).toBe(s.sigmas[0]);
    const d = createScheduler('dpmpp-2m', config, 4, { timestepSpacing: 'linspace' });
    expect(Array.from(d.timesteps)).toEqual([999, 749, 500, 250]);
    const dd = createScheduler('ddim', config, 4, { timestepSpacing: 'trailing' });
    expect(Array.from(dd.timesteps)).toEqual([999, 749, 499, 249]);
  });

  it('keeps diffusers\' step count quirk of trailing spacing (numpy arange overshoot)', () => {
    // np.arange(1000, 0, -1000/61) has 62 elements; diffusers then runs 62 steps, the last at t = -1
    const s = createScheduler('euler', config, 61, { timestepSpacing: 'trailing' });
    expect(s.numSteps).toBe(62);
    expect(s.timesteps[61]).toBe(-1);
    expect(s.sigmas).toHaveLength(63);
    expect(createScheduler('euler', config, 60, { timestepSpacing: 'trailing' }).numSteps).toBe(60);
  });

  it('parses configs with Infinity tokens', () => {
    const c = parseSchedulerConfig('{"lambda_min_clipped": -Infinity, "x": 1}');
    expect(c.lambda_min_clipped).toBe(-Infinity);
    expect(() => parseSchedulerConfig('[1]')).toThrow(/scheduler_config.json: not a JSON object/);
  });
});

describe('scheduler tables vs the pipeline goldens (cases.json)', () => {
  for (const fixture of ['tiny-sdxl', 'tiny-koala']) {
    it(fixture, () => {
      const cases = (JSON.parse(readFileSync(join(root, fixture, 'goldens/cases.json'), 'utf8')) as {
        pipeline: Array<{ name: string; scheduler: string; num_inference_steps: number; timesteps: number[]; sigmas?: number[]; init_noise_sigma: number }>;
      }).pipeline;
      const cfg = parseSchedulerConfig(readFileSync(join(root, fixture, 'scheduler/scheduler_config.json'), 'utf8'));
      expect(cases.length).toBeGreaterThanOrEqual(4);
      for (const c of cases) {
        const how = KINDS[c.scheduler]!;
        const s = createScheduler(how.name, cfg, c.num_inference_steps, how.opts);
        relClose(s.timesteps, c.timesteps, 1e-6, `${c.name} timesteps`);
        if (c.sigmas) relClose(s.sigmas, c.sigmas, 1e-6, `${c.name} sigmas`);
        relClose([s.initNoiseSigma], [c.init_noise_sigma], 1e-6, `${c.name} init_noise_sigma`);
      }
    });
  }
});
