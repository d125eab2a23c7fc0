import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { encodeSafetensors, readSafetensorsHeader, readTensorF32 } from '../workers/model/safetensors';
import { fileSource } from '../workers/model/safetensors.node.js';
import { fixtureDir, golden } from '../workers/model/testing/fixtures.node.js';
import { maxAbsDiff } from '../workers/model/testing/run-wasm.node.js';
import { parseComponentArgs, UsageError } from './component';

const run = promisify(execFile);
const ROOT = resolve(__dirname, '..');
const TSX = resolve(ROOT, 'node_modules/.bin/tsx');
const tmp = mkdtempSync(join(tmpdir(), 'component-'));

async function cli(args: string[]) {
  try {
    const r = await run(TSX, ['scripts/component.ts', ...args], { cwd: ROOT });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

async function readOut(path: string, name: string) {
  const f = await readSafetensorsHeader(fileSource(path));
  return { data: await readTensorF32(f, name), shape: f.tensors.get(name)!.shape };
}

describe('component CLI (tiny-koala, wasm backend)', () => {
  it('text_encoder_2 with int64 input_ids writes hidden_states_m2, last_hidden_state, text_embeds matching the goldens', async () => {
    const fx = 'tiny-koala', G = 'text_encoders.safetensors';
    const ids = await golden(fx, G, 'case1.input_ids_2');
    const inPath = join(tmp, 'te2-in.safetensors'), outPath = join(tmp, 'te2-out.safetensors');
    writeFileSync(inPath, encodeSafetensors({ input_ids: { dtype: 'I64', shape: ids.shape, data: BigInt64Array.from(ids.data, (v) => BigInt(v)) } }));
    const r = await cli(['--model', fixtureDir(fx), '--component', 'text_encoder_2', '--inputs', inPath, '--out', outPath]);
    expect(r.code, r.stderr).toBe(0);
    for (const [o, g] of [['hidden_states_m2', 'te2_hidden_states_m2'], ['last_hidden_state', 'te2_last_hidden_state'], ['text_embeds', 'te2_text_embeds']]) {
      const out = await readOut(outPath, o), ref = await golden(fx, G, `case1.${g}`);
      expect(out.shape).toEqual(ref.shape);
      expect(maxAbsDiff(out.data, ref.data), o).toBeLessThanOrEqual(1e-4);
    }
  });

  it('text_encoder --variant fp16 with fp32 input_ids', async () => {
    const fx = 'tiny-koala', G = 'text_encoders.safetensors';
    const ids = await golden(fx, G, 'case0.input_ids_1');
    const inPath = join(tmp, 'te1-in.safetensors'), outPath = join(tmp, 'te1-out.safetensors');
    writeFileSync(inPath, encodeSafetensors({ input_ids: { dtype: 'F32', shape: ids.shape, data: ids.data } }));
    const r = await cli(['--model', fixtureDir(fx), '--component', 'text_encoder', '--variant', 'fp16', '--inputs', inPath, '--out', outPath]);
    expect(r.code, r.stderr).toBe(0);
    const out = await readOut(outPath, 'hidden_states_m2'), ref = await golden(fx, G, 'case0.te1_hidden_states_m2');
    expect(maxAbsDiff(out.data, ref.data)).toBeLessThanOrEqual(1.5e-2); // fp16 weight rounding (see clip.test.ts)
  });

  it('vae_decoder writes the unclamped image', async () => {
    const fx = 'tiny-koala', G = 'vae.safetensors';
    const lat = await golden(fx, G, 'case1.latents_scaled');
    const inPath = join(tmp, 'vae-in.safetensors'), outPath = join(tmp, 'vae-out.safetensors');
    writeFileSync(inPath, encodeSafetensors({ latents_scaled: { dtype: 'F32', shape: lat.shape, data: lat.data } }));
    const r = await cli(['--model', fixtureDir(fx), '--component', 'vae_decoder', '--inputs', inPath, '--out', outPath]);
    expect(r.code, r.stderr).toBe(0);
    const out = await readOut(outPath, 'image'), ref = await golden(fx, G, 'case1.image');
    expect(r.stdout).toContain(`image [${ref.shape}]`);
    expect(out.shape).toEqual(ref.shape);
    expect(maxAbsDiff(out.data, ref.data)).toBeLessThanOrEqual(1e-4);
  });

  it('unet (batch 2, one timestep) writes out matching the golden', async () => {
    const fx = 'tiny-koala', G = 'unet.safetensors';
    const t: Parameters<typeof encodeSafetensors>[0] = {};
    for (const n of ['sample', 'timestep', 'encoder_hidden_states', 'text_embeds', 'time_ids']) {
      const g = await golden(fx, G, `case1.${n}`);
      t[n] = { dtype: 'F32', shape: g.shape, data: g.data };
    }
    const inPath = join(tmp, 'unet-in.safetensors'), outPath = join(tmp, 'unet-out.safetensors');
    writeFileSync(inPath, encodeSafetensors(t));
    const r = await cli(['--model', fixtureDir(fx), '--component', 'unet', '--inputs', inPath, '--out', outPath]);
    expect(r.code, r.stderr).toBe(0);
    const out = await readOut(outPath, 'out'), ref = await golden(fx, G, 'case1.out');
    expect(out.shape).toEqual(ref.shape);
    expect(maxAbsDiff(out.data, ref.data)).toBeLessThanOrEqual(1e-4);
  });

  it('bad usage exits 2 with a message; a missing input tensor exits 1 naming it', async () => {
    const r = await cli(['--model', 'x', '--component', 'vae_decoder', '--bogus', '1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Unknown option '--bogus'/);
    expect(r.stderr).toMatch(/usage: npm run component/);
    const inPath = join(tmp, 'empty.safetensors');
    writeFileSync(inPath, encodeSafetensors({ x: { dtype: 'F32', shape: [1], data: new Float32Array(1) } }));
    const r2 = await cli(['--model', fixtureDir('tiny-koala'), '--component', 'vae_decoder', '--inputs', inPath, '--out', join(tmp, 'o.safetensors')]);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/missing input tensor "latents_scaled" \(have: x\)/);
  });

  it('parses options', () => {
    expect(parseComponentArgs(['--model', 'm', '--component', 'unet', '--inputs', 'i', '--out', 'o', '--precision', 'fp16']))
      .toEqual({ model: 'm', component: 'unet', variant: undefined, precision: 'fp16', inputs: 'i', out: 'o', maxBindingBytes: undefined });
    expect(() => parseComponentArgs(['--model', 'm', '--component', 'clip', '--inputs', 'i', '--out', 'o'])).toThrow(UsageError);
    expect(() => parseComponentArgs(['--model', 'm', '--component', 'unet', '--inputs', 'i'])).toThrow('missing --out');
    expect(() => parseComponentArgs(['--model', 'm', '--component', 'unet', '--inputs', 'i', '--out', 'o', '--precision', 'bf16'])).toThrow('--precision must be fp32 or fp16');
  });
});
