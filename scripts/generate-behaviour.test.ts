/** Seeds, batches, truncation and cancel through the generate CLI and the pipeline (tiny-koala, wasm). */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-web';
import { afterAll, describe, expect, it } from 'vitest';
import { localRepoFromDir } from '../workers/hub/node.node.js';
import { fixtureDir } from '../workers/model/testing/fixtures.node';
import { bytesSource, readSafetensorsHeader, readTensorF32 } from '../workers/model/safetensors';
import { readPngText } from '../workers/pipeline/png';
import { BlobRegistry, createOrtBackend } from '../workers/pipeline/ort-backend';
import { openSdxlModel } from '../workers/pipeline/sdxl-model';
import { SdxlPipeline } from '../workers/pipeline/sdxl-pipeline';
import { main } from './generate';

const tmp = mkdtempSync(join(tmpdir(), 'generate-behaviour-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const model = fixtureDir('tiny-koala');
const quiet = { log: () => undefined };
const run = (...args: string[]) => main(['--model', model, '--steps', '3', ...args], quiet);
const bytes = (p: string) => readFileSync(join(tmp, p));

async function dumpImage(p: string): Promise<Float32Array> {
  const f = await readSafetensorsHeader(bytesSource(new Uint8Array(bytes(p)), p));
  return readTensorF32(f, 'image');
}

describe('generate CLI behaviour', () => {
  it('gives byte-identical PNGs for the same seed and a different image for another seed', async () => {
    expect(await run('--prompt', 'a koala', '--seed', '1234', '--out', join(tmp, 'a.png'))).toBe(0);
    expect(await run('--prompt', 'a koala', '--seed', '1234', '--out', join(tmp, 'b.png'))).toBe(0);
    expect(await run('--prompt', 'a koala', '--seed', '1235', '--out', join(tmp, 'c.png'))).toBe(0);
    expect(bytes('a.png').equals(bytes('b.png'))).toBe(true);
    expect(bytes('a.png').equals(bytes('c.png'))).toBe(false);
    const params = (await readPngText(new Uint8Array(bytes('a.png'))))['parameters']!;
    expect(params).toMatch(/^a koala\nSteps: 3, Sampler: Euler, .*CFG scale: 7.5, Seed: 1234, Size: 64x64, Model: tiny-koala/);
  });

  it('numbers a batch; image k uses seed + k and equals that image generated alone', async () => {
    expect(await run('--prompt', 'a koala', '--prompt', 'a bear', '--num-images', '2', '--seed', '10', '--out', join(tmp, 'batch.png'), '--dump', join(tmp, 'batch.safetensors'))).toBe(0);
    const seeds = [];
    for (let k = 1; k <= 4; k++) {
      const t = await readPngText(new Uint8Array(bytes(`batch-0${k}.png`)));
      seeds.push(/Seed: (\d+)/.exec(t['parameters']!)![1]);
      expect(t['parameters']!.startsWith(k <= 2 ? 'a koala' : 'a bear')).toBe(true);
    }
    expect(seeds).toEqual(['10', '11', '12', '13']);
    // image 3 (index 2): prompt "a bear", seed 12
    expect(await run('--prompt', 'a bear', '--seed', '12', '--out', join(tmp, 'alone.png'), '--dump', join(tmp, 'alone.safetensors'))).toBe(0);
    const batch = await dumpImage('batch.safetensors');
    const alone = await dumpImage('alone.safetensors');
    const n = alone.length;
    let err = 0;
    for (let i = 0; i < n; i++) err = Math.max(err, Math.abs(batch[2 * n + i]! - alone[i]!));
    expect(err).toBeLessThanOrEqual(1e-5);
  });

  it('encodes --negative-prompt "" unlike an absent negative prompt', async () => {
    expect(await run('--prompt', 'a koala', '--seed', '5', '--out', join(tmp, 'none.png'))).toBe(0);
    expect(await run('--prompt', 'a koala', '--seed', '5', '--negative-prompt', '', '--out', join(tmp, 'empty.png'))).toBe(0);
    expect(bytes('none.png').equals(bytes('empty.png'))).toBe(false);
    expect((await readPngText(new Uint8Array(bytes('empty.png'))))['parameters']).toContain('\nNegative prompt: \n');
  });

  it('reports tokens dropped from a prompt over 77 tokens', async () => {
    const log: string[] = [];
    const long = Array.from({ length: 90 }, (_, i) => `word${i}`).join(' ');
    expect(await main(['--model', model, '--steps', '1', '--prompt-style', 'plain', '--prompt', long, '--out', join(tmp, 'long.png')], { log: (l) => log.push(l) })).toBe(0);
    expect(log.join('\n')).toMatch(/longer than 77 tokens; \d+ tokens were dropped/);
  });

  it('exits 2 with a message for bad input', async () => {
    const log: string[] = [];
    expect(await main(['--model', model, '--prompt', 'x', '--scheduler', 'heun'], { log: (l) => log.push(l) })).toBe(2);
    expect(log[0]).toContain('unknown --scheduler "heun"');
  });
});

describe('pipeline cancel', () => {
  it('stops within one step when the signal aborts', async () => {
    ort.env.wasm.numThreads = 1;
    const blobs = new BlobRegistry();
    const pipe = new SdxlPipeline(await openSdxlModel(await localRepoFromDir(model, { variant: null }), blobs), createOrtBackend(ort, 'wasm', blobs), { precision: 'fp32' });
    const ac = new AbortController();
    const steps: number[] = [];
    const p = pipe.generate({
      prompts: ['a koala'], numImagesPerPrompt: 1, steps: 10, guidance: 5, scheduler: 'euler', width: 64, height: 64, seed: 1, signal: ac.signal,
      onStep: (s) => {
        steps.push(s.step);
        if (s.step === 2) ac.abort();
      },
    });
    await expect(p).rejects.toMatchObject({ code: 'cancelled' });
    expect(steps).toEqual([1, 2]);
    await pipe.release();
  });
});

describe('pipeline warm-up run', () => {
  it('skipDecode runs the encoders, the U-Net and the step graph but not the VAE', async () => {
    ort.env.wasm.numThreads = 1;
    const blobs = new BlobRegistry();
    const backend = createOrtBackend(ort, 'wasm', blobs);
    const pipe = new SdxlPipeline(await openSdxlModel(await localRepoFromDir(model, { variant: null }), blobs), backend, { precision: 'fp32' });
    const labels: string[] = [];
    const create = backend.createSession.bind(backend);
    backend.createSession = (g, o) => {
      labels.push(o.label.split(':')[0]!);
      return create(g, o);
    };
    const r = await pipe.generate({ prompts: [''], numImagesPerPrompt: 1, steps: 1, guidance: 2, scheduler: 'euler', width: 64, height: 64, seed: 0, skipDecode: true });
    expect(r.images).toEqual([]);
    expect(r.stepsRun).toBe(1);
    expect(labels).toContain('unet');
    expect(labels).not.toContain('vae');
    await pipe.release();
  });
});
