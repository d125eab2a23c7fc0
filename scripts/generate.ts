/**
 * `npm run generate -- [options]`: text → PNG in Node on onnxruntime-web's wasm backend, with the
 * same engine code as the page (workers/pipeline, workers/model, workers/hub). See GENERATE_USAGE.
 */
import { openAsBlob } from 'node:fs';
import { decode as decodePng } from 'fast-png';
import { createHash } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as ort from 'onnxruntime-web';
import { ensureModelNode, localRepoFromDir } from '../workers/hub/node.node.js';
import type { ModelFiles } from '../workers/hub/types';
import { FileLocks } from '../workers/hub/file-locks.node.js';
import { createFsStore } from '../workers/hub/fs-store.node.js';
import { ensureHubFile } from '../workers/hub/hub-file';
import { openLora, type LoraTargets, type OpenedLora } from '../workers/model/lora';
import { blobSource, bytesSource, encodeSafetensors, readSafetensorsHeader, readTensorF32 } from '../workers/model/safetensors';
import { asEngineError, loraNameOf, parseHubLora } from '../workers/pipeline/lora-sources';
import { defaultSizeFor, fitInitImage, fitMask } from '../workers/pipeline/init-image';
import { DEFAULT_TAESD_REPO, openStandaloneVae, openTaesd } from '../workers/pipeline/component-source';
import { formatParameters } from '../workers/pipeline/a1111';
import { BlobRegistry, createOrtBackend, type SessionFactory } from '../workers/pipeline/ort-backend';
import { probeFusedOps } from '../workers/runtime/fused-ops-probe';
import { wasmProbeRunner } from '../workers/runtime/fused-ops-wasm.node.js';
import { createOrtGemm } from '../workers/pipeline/cpu-gemm';
import { createNodeWasmSession } from '../workers/runtime/wasm-instances.node.js';
import { assertValidParams } from '../workers/pipeline/params';
import { encodePng } from '../workers/pipeline/png';
import { randomSeed } from '../workers/pipeline/rng';
import { openSdxlModel } from '../workers/pipeline/sdxl-model';
import { fusedProbeShapes, SdxlPipeline, type PipelineResult } from '../workers/pipeline/sdxl-pipeline';
import { EngineError, type GenerateParams, type LoraRef } from '../workers/protocol';
import { GENERATE_USAGE, parseGenerateArgs, UsageError, type GenerateOptions } from './generate-args';

export interface GenerateIo {
  log(line: string): void;
}

async function isDir(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined))?.isDirectory() ?? false;
}

async function openModelFiles(o: GenerateOptions, io: GenerateIo): Promise<ModelFiles> {
  if (await isDir(o.model)) return localRepoFromDir(o.model, { variant: o.variant ?? null });
  if (!/^[\w.-]+\/[\w.-]+$/.test(o.model)) {
    throw new UsageError(`--model "${o.model}" is neither a folder nor a hub repo id like etri-vilab/koala-700m-llava-cap`);
  }
  let last = 0;
  return ensureModelNode({
    repo: o.model,
    revision: o.revision,
    // like diffusers: no --variant means the plain (fp32) weight files
    variant: o.variant ?? null,
    hubUrl: o.hubUrl,
    cacheDir: o.cacheDir,
    onProgress(p) {
      const t = Date.now();
      if (t - last < 1000 && p.bytesDone < p.bytesTotal) return;
      last = t;
      const mb = (n: number) => (n / 1e6).toFixed(1);
      io.log(
        `download ${mb(p.bytesDone)}/${mb(p.bytesTotal)} MB  ${mb(p.rate)} MB/s${p.eta !== undefined ? `  ETA ${Math.round(p.eta)} s` : ''}`,
      );
    },
  });
}

async function readTensors(path: string, names: (n: string) => boolean): Promise<Map<string, Float32Array>> {
  const bytes = new Uint8Array(await readFile(path));
  const file = await readSafetensorsHeader(bytesSource(bytes, path));
  const out = new Map<string, Float32Array>();
  for (const name of [...file.tensors.keys()].sort()) if (names(name)) out.set(name, await readTensorF32(file, name));
  return out;
}

function outPath(out: string, index: number, count: number): string {
  if (count === 1) return out;
  const ext = extname(out) || '.png';
  return `${out.slice(0, out.length - extname(out).length)}-${String(index + 1).padStart(2, '0')}${ext}`;
}

/** `--lora` values as LoraRefs (a local file opened lazily; hub files through the download cache) opened against the model. */
async function openCliLoras(o: GenerateOptions, io: GenerateIo, targets: LoraTargets): Promise<{ ref: LoraRef; opened: OpenedLora }[]> {
  const out: { ref: LoraRef; opened: OpenedLora }[] = [];
  for (const { location, scale } of o.loras) {
    // an existing file wins over the owner/repo/file reading of the same text
    const isFile = (await stat(location).catch(() => undefined))?.isFile() ?? false;
    const hub = isFile ? undefined : parseHubLora(location);
    let blob: Blob;
    let source: LoraRef['source'];
    if (hub) {
      const src = { ...hub, hubUrl: hub.hubUrl ?? o.hubUrl };
      const store = createFsStore({ dir: o.cacheDir });
      io.log(`LoRA ${src.repo}/${src.file}: resolving`);
      blob = (await ensureHubFile({ store, repo: src.repo, path: src.file, revision: src.revision, hubUrl: src.hubUrl, locks: new FileLocks(join(store.dir, 'locks')) })).blob;
      source = src;
    } else {
      if (!isFile) throw new EngineError('bad-input', `--lora ${location}: no such file (and not owner/repo/file.safetensors or a hub URL)`);
      blob = await openAsBlob(location);
      source = { kind: 'local', name: basename(location), blob };
    }
    const name = loraNameOf(hub ? hub.file : location);
    const opened = await openLora(blobSource(blob, hub ? hub.file : location), targets, name).catch((e: unknown) => {
      throw asEngineError(e);
    });
    out.push({ ref: { name, source, scale, allowPartial: o.loraAllowPartial }, opened });
  }
  return out;
}

/** Files of a standalone component: a folder, or a hub repo through the download cache (a missing file reads as undefined). */
async function componentReader(where: string, o: GenerateOptions, io: GenerateIo, flag: string): Promise<{ name: string; read: (p: string) => Promise<Blob | undefined> }> {
  if (await isDir(where)) {
    return { name: basename(where), read: async (p) => ((await stat(join(where, p)).catch(() => undefined))?.isFile() ? openAsBlob(join(where, p)) : undefined) };
  }
  if (!/^[\w.-]+\/[\w.-]+$/.test(where)) throw new EngineError('bad-input', `${flag} ${where}: neither a folder nor a hub repo id`);
  const store = createFsStore({ dir: o.cacheDir });
  const locks = new FileLocks(join(store.dir, 'locks'));
  io.log(`${flag.slice(2)}: ${where}`);
  return {
    name: where,
    read: async (p) =>
      (await ensureHubFile({ store, locks, repo: where, path: p, hubUrl: o.hubUrl, safetensorsOnly: false }).catch((e: unknown) => {
        if (e instanceof EngineError && e.code === 'bad-input' && /has no file/.test(e.message)) return undefined;
        throw e;
      }))?.blob,
  };
}

/** `--taesd` (default madebyollin/taesdxl). */
async function openCliTaesd(o: GenerateOptions, io: GenerateIo) {
  const { name, read } = await componentReader(o.taesd ?? DEFAULT_TAESD_REPO, o, io, '--taesd');
  return openTaesd(name, read, o.variant);
}

/** A PNG file as RGBA (the CLI reads PNG only; the page also takes JPEG and WebP). */
async function readPngRgba(path: string, flag = '--init-image'): Promise<{ data: Uint8Array; width: number; height: number }> {
  const bytes = await readFile(path).catch(() => {
    throw new EngineError('bad-input', `${flag} ${path}: no such file`);
  });
  let png;
  try {
    png = decodePng(bytes);
  } catch (e) {
    throw new EngineError('bad-input', `${flag} ${path}: not a PNG file the CLI can read (${(e as Error).message}); convert JPEG/WebP to PNG first`);
  }
  if (png.palette) throw new EngineError('bad-input', `${flag} ${path}: palette PNGs are not supported; save it as RGB`);
  const { width, height, channels, depth } = png;
  const src = png.data;
  const data = new Uint8Array(width * height * 4);
  const max = depth === 16 ? 65535 : 255;
  for (let p = 0; p < width * height; p++) {
    const px = (k: number) => Math.round((src[p * channels + k]! * 255) / max);
    const gray = channels <= 2;
    data[p * 4] = px(0);
    data[p * 4 + 1] = gray ? px(0) : px(1);
    data[p * 4 + 2] = gray ? px(0) : px(2);
    data[p * 4 + 3] = 255;
  }
  return { data, width, height };
}

export async function runGenerate(o: GenerateOptions, io: GenerateIo): Promise<PipelineResult> {
  const files = await openModelFiles(o, io);
  const blobs = new BlobRegistry();
  const model = await openSdxlModel(files, blobs);
  if (o.precision === 'fp16')
    io.log('note: the wasm backend computes in fp32; --precision fp16 only changes the graphs (fp16 compute is tested on WebGPU)');
  // big graphs (full-size U-Net, OpenCLIP bigG) run in wasm instances of their own: one is a 4 GiB heap
  const factory: SessionFactory = (graph, opts, createLocal) =>
    createNodeWasmSession(graph, { label: opts.label, ort, createLocal, log: io.log });
  // fused kernels where onnxruntime's wasm backend agrees with the decompositions (−18% per full-size U-Net call)
  const fused = await probeFusedOps(o.precision === 'fp16' ? 'float16' : 'float32', fusedProbeShapes(model.unet.weights), wasmProbeRunner(ort), 'wasm');
  const pipeline = new SdxlPipeline(model, createOrtBackend(ort, 'wasm', blobs, factory), { precision: o.precision, loraGemm: createOrtGemm(ort), fused: fused.ops });
  let init: { image: Float32Array; strength: number; mask?: Float32Array } | undefined;
  let initSha256: string | undefined;
  let width = o.width ?? model.defaultSize;
  let height = o.height ?? model.defaultSize;
  if (o.initImage) {
    const img = await readPngRgba(o.initImage);
    const size = defaultSizeFor(img, model.vaeScale, 2048);
    width = o.width ?? size.width;
    height = o.height ?? size.height;
    const { tensor, report } = fitInitImage(img, width, height);
    if (report.message) io.log(`init image: ${report.message}`);
    init = { image: tensor, strength: o.strength ?? 0.8 };
    if (o.mask) {
      const m = fitMask(await readPngRgba(o.mask, '--mask'), width, height);
      if (m.report.message) io.log(`mask: ${m.report.message}`);
      init.mask = m.mask;
    }
    initSha256 = createHash('sha256').update(await readFile(o.initImage)).digest('hex');
  }
  const steps = o.steps ?? 25;
  const seed = o.seed ?? randomSeed();
  let latents: Float32Array | undefined;
  if (o.latents) {
    const t = await readTensors(o.latents, (n) => n === 'latents');
    latents = t.get('latents');
    if (!latents) throw new EngineError('bad-input', `${o.latents}: no tensor named "latents"`);
  }
  let stepNoise: Float32Array[] | undefined;
  if (o.stepNoise) {
    const t = await readTensors(o.stepNoise, (n) => /^step_noise\.\d+$/.test(n));
    stepNoise = [...t.entries()].sort(([a], [b]) => Number(a.split('.')[1]) - Number(b.split('.')[1])).map(([, v]) => v);
    if (!stepNoise.length) throw new EngineError('bad-input', `${o.stepNoise}: no tensors named step_noise.00, step_noise.01, …`);
  }
  if (o.decoder === 'taesd') pipeline.setTaesd(await openCliTaesd(o, io));
  if (o.vae) {
    const { name, read } = await componentReader(o.vae, o, io, '--vae');
    pipeline.setVae(await openStandaloneVae(name, read, o.variant));
    io.log(`VAE: ${name} (${pipeline.vaeCompute === 'float16' ? 'fp16: the VAE says it is fp16-safe' : 'fp32'})`);
  }
  const loras = await openCliLoras(o, io, pipeline.loraTargets());
  const reports = await pipeline.setLoras(loras.map((l) => ({ lora: l.opened, scale: l.ref.scale, allowPartial: o.loraAllowPartial }))).catch((e: unknown) => {
    throw asEngineError(e);
  });
  for (const r of reports) {
    const per = `U-Net ${r.perComponent.unet}, text encoder ${r.perComponent.text_encoder}, text encoder 2 ${r.perComponent.text_encoder_2}`;
    io.log(`LoRA ${r.name} (${r.layout}): ${r.matched} of ${r.modules} modules applied (${per})${r.unmatchedCount ? `; ${r.unmatchedCount} not in this model, e.g. ${r.unmatched.slice(0, 3).join(', ')}` : ''}`);
  }
  const paramsFor = (promptIndex: number, seed: number): GenerateParams => ({
    model: { repo: model.name, variant: o.variant },
    prompt: o.prompts[promptIndex]!,
    negativePrompt: o.negativePrompts?.[promptIndex],
    steps,
    guidance: o.guidance ?? 7.5,
    scheduler: o.scheduler ?? 'euler',
    timestepSpacing: o.timestepSpacing,
    width,
    height,
    originalSize: o.originalSize,
    cropTopLeft: o.cropTopLeft,
    targetSize: o.targetSize,
    seed,
    numImages: o.numImages,
    promptStyle: o.promptStyle,
    loras: loras.length ? loras.map((l) => l.ref) : undefined,
    ...(o.decoder === 'taesd' ? { decoder: 'taesd' as const } : {}),
    ...(o.vae ? { vaeRepo: o.vae } : {}),
    ...(init ? { strength: init.strength, initImageSha256: initSha256, mode: init.mask ? ('inpaint' as const) : ('img2img' as const) } : {}),
  });
  // the page's rules (workers/pipeline/params.ts), so CLI and page accept the same values
  assertValidParams(paramsFor(0, seed), { sizeMultiple: model.vaeScale });
  const t0 = Date.now();
  try {
    const base = paramsFor(0, seed);
    const result = await pipeline.generate({
      ...base,
      prompts: o.prompts,
      negativePrompts: o.negativePrompts,
      numImagesPerPrompt: o.numImages,
      latents,
      stepNoise,
      init,
      decoder: o.decoder,
      dump: !!o.dump,
      onPhase: (_phase, label) => io.log(label),
      onStep: (s) => io.log(`step ${s.step}/${s.total}  ${s.rate.toFixed(2)} it/s`),
    });
    if (result.note) io.log(`note: ${result.note}`);
    else if (init) io.log(`${init.mask ? 'inpainting' : 'image to image'}: strength ${init.strength}, ${result.stepsRun} of ${steps} steps run`);
    if (result.prompt.style === 'weighted') io.log(`prompt read with A1111 weights: ${result.prompt.chunks} chunk(s), ${result.prompt.tokens} text tokens`);
    if (result.truncated.prompt) io.log(`warning: the prompt is longer than 77 tokens; ${result.truncated.prompt} tokens were dropped (--prompt-style plain; auto or weighted keep them)`);
    if (result.truncated.negativePrompt)
      io.log(`warning: the negative prompt is longer than 77 tokens; ${result.truncated.negativePrompt} tokens were dropped`);
    await mkdir(dirname(resolve(o.out)), { recursive: true });
    for (const [k, img] of result.images.entries()) {
      const promptIndex = Math.floor(k / o.numImages);
      const png = await encodePng(img.rgba, img.width, img.height, {
        text: { parameters: formatParameters(paramsFor(promptIndex, seed), img.seed) },
      });
      const path = outPath(o.out, k, result.images.length);
      await writeFile(path, png);
      io.log(`wrote ${path} (seed ${img.seed})`);
    }
    if (o.dump && result.dump) {
      const tensors = Object.fromEntries(
        Object.entries(result.dump).map(([k, t]) => [k, { dtype: 'F32' as const, shape: t.dims, data: t.data }]),
      );
      await writeFile(o.dump, encodeSafetensors(tensors));
      io.log(`wrote ${o.dump} (${Object.keys(tensors).sort().join(', ')})`);
    }
    io.log(`done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return result;
  } finally {
    await pipeline.release();
  }
}

export async function main(argv: string[], io: GenerateIo = { log: (l) => process.stderr.write(`${l}\n`) }): Promise<number> {
  let o: GenerateOptions;
  try {
    o = parseGenerateArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      if (e.message) io.log(`error: ${e.message}\n`);
      io.log(GENERATE_USAGE);
      return e.message ? 2 : 0;
    }
    throw e;
  }
  const quietIo: GenerateIo = o.quiet ? { log: () => undefined } : io;
  ort.env.wasm.numThreads = Math.max(1, Math.min(4, availableParallelism()));
  try {
    await runGenerate(o, quietIo);
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      io.log(`error: ${e.message}`);
      return 2;
    }
    if (e instanceof EngineError && e.code === 'bad-input') {
      io.log(`error: ${e.message}`);
      return 2;
    }
    io.log(`error: ${(e as Error).message}`);
    return 1;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
