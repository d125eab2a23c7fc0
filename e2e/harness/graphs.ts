/**
 * Browser side: the tiny fixtures' text encoders, U-Net and VAE decoder graphs, built by the project's
 * builders from Blobs fetched off the mock hub, run on onnxruntime-web's WebGPU EP in fp32 and compared
 * with the diffusers goldens. Every session is created with ORT's verbose node-placement report
 * (workers/runtime/session.ts, placement 'report'), so the caller sees which nodes ORT put on the CPU.
 */
import { modelFilesFromMap } from '../../workers/hub/model-files';
import { buildClipTextGraph } from '../../workers/model/clip';
import type { BuiltGraph } from '../../workers/model/graph';
import { buildUnetGraph } from '../../workers/model/unet';
import { buildVaeDecoderGraph } from '../../workers/model/vae';
import { BlobRegistry } from '../../workers/pipeline/ort-backend';
import { openSdxlModel } from '../../workers/pipeline/sdxl-model';
import { ort } from '../../workers/runtime/ort';
import { onOrtLog } from '../../workers/runtime/ort-log';
import { createSession } from '../../workers/runtime/session';
import { fetchBlob, fetchRepoFiles, GoldenFile, maxAbs, maxAbsDiff } from './hub-files';

export interface OutputCheck {
  output: string;
  golden: string;
  maxAbsErr: number;
  maxAbsRef: number;
}

export interface GraphCheck {
  repo: string;
  graph: 'text_encoder' | 'text_encoder_2' | 'unet' | 'vae';
  /** Golden case prefixes run through this one session. */
  cases: string[];
  /** Input shapes, e.g. "sample[2,4,8,16]". */
  inputs: string[];
  /** "OpType (name)" of nodes ORT placed on the CPU EP. */
  cpuNodes: string[];
  createMs: number;
  runMs: number;
  outputs: (OutputCheck & { case: string })[];
}

interface Cases {
  text_encoders: { index: number }[];
  unet: { index: number; batch: number; latent_hw: [number, number] }[];
  vae: { index: number; latent_hw: [number, number] }[];
}

async function runChecks(
  repo: string,
  graphName: GraphCheck['graph'],
  graph: BuiltGraph,
  files: Map<string, Blob>,
  golden: GoldenFile,
  cases: { prefix: string; feeds: Record<string, string>; outputs: Record<string, string> }[],
): Promise<GraphCheck> {
  const s = await createSession(graph, { backend: 'webgpu', name: `${repo} ${graphName}`, placement: 'report', files });
  const check: GraphCheck = {
    repo,
    graph: graphName,
    cases: cases.map((c) => c.prefix),
    inputs: graph.inputs.map((i) => `${i.name}[${i.shape.join(',')}]`),
    cpuNodes: s.cpuNodes,
    createMs: s.createMs,
    runMs: 0,
    outputs: [],
  };
  // the session keeps the verbose logger of the placement check: drop its per-kernel lines while it runs
  // (thousands of console calls per U-Net run, each one crossing to the test runner, cost more than the run)
  const quiet = onOrtLog((line) => /\[[VI]:onnxruntime[:,]/.test(line));
  try {
    for (const c of cases) {
      const feeds: Record<string, ort.Tensor> = {};
      for (const i of graph.inputs) {
        const g = await golden.tensor(`${c.prefix}.${c.feeds[i.name] ?? i.name}`);
        if (g.data.length !== i.shape.reduce((a, b) => a * b, 1))
          throw new Error(`${golden.name}: ${c.prefix}.${i.name} has shape [${g.shape}], the graph wants [${i.shape}]`);
        feeds[i.name] =
          i.dtype === 'int64'
            ? new ort.Tensor(
                'int64',
                BigInt64Array.from(g.data, (x) => BigInt(Math.round(x))),
                i.shape,
              )
            : new ort.Tensor('float32', g.data, i.shape);
      }
      const t0 = performance.now();
      const out = await s.run(feeds);
      check.runMs += performance.now() - t0;
      for (const [o, gname] of Object.entries(c.outputs)) {
        const t = out[o];
        if (!t) throw new Error(`${repo} ${graphName}: no output "${o}"`);
        const got = t.data as Float32Array;
        const ref = (await golden.tensor(`${c.prefix}.${gname}`)).data;
        check.outputs.push({ case: c.prefix, output: o, golden: gname, maxAbsErr: maxAbsDiff(got, ref), maxAbsRef: maxAbs(ref) });
      }
    }
  } finally {
    quiet();
    await s.release();
  }
  return check;
}

/** Every graph of one fixture repo on WebGPU fp32 against its goldens (one session per graph shape). */
export async function checkFixtureGraphs(hub: string, repo: string): Promise<GraphCheck[]> {
  const files = await fetchRepoFiles(hub, repo);
  const model = await openSdxlModel(await modelFilesFromMap(repo, files), new BlobRegistry());
  const cases = JSON.parse(await (await fetchBlob(hub, repo, 'goldens/cases.json')).text()) as Cases;
  const te = await GoldenFile.open(hub, repo, 'text_encoders.safetensors');
  const un = await GoldenFile.open(hub, repo, 'unet.safetensors');
  const va = await GoldenFile.open(hub, repo, 'vae.safetensors');
  const results: GraphCheck[] = [];
  const teCases = cases.text_encoders.map((c) => `case${c.index}`);

  results.push(
    await runChecks(
      repo,
      'text_encoder',
      buildClipTextGraph(model.textEncoder.config, model.textEncoder.weights, {
        batch: 1,
        compute: 'float32',
        withProjection: false,
        configName: 'text_encoder/config.json',
      }),
      files,
      te,
      teCases.map((prefix) => ({
        prefix,
        feeds: { input_ids: 'input_ids_1' },
        outputs: { hidden_states_m2: 'te1_hidden_states_m2', last_hidden_state: 'te1_last_hidden_state' },
      })),
    ),
  );
  results.push(
    await runChecks(
      repo,
      'text_encoder_2',
      buildClipTextGraph(model.textEncoder2.config, model.textEncoder2.weights, {
        batch: 1,
        compute: 'float32',
        withProjection: true,
        configName: 'text_encoder_2/config.json',
      }),
      files,
      te,
      teCases.map((prefix) => ({
        prefix,
        feeds: { input_ids: 'input_ids_2' },
        outputs: { hidden_states_m2: 'te2_hidden_states_m2', last_hidden_state: 'te2_last_hidden_state', text_embeds: 'te2_text_embeds' },
      })),
    ),
  );

  for (const c of cases.unet) {
    const [h, w] = c.latent_hw;
    results.push(
      await runChecks(
        repo,
        'unet',
        buildUnetGraph(model.unet.config, model.unet.weights, { batch: c.batch, height: h, width: w, compute: 'float32' }),
        files,
        un,
        [{ prefix: `case${c.index}`, feeds: {}, outputs: { out: 'out' } }],
      ),
    );
  }
  for (const [k, c] of cases.vae.entries()) {
    const [h, w] = c.latent_hw;
    // the second case with a tiny binding limit: chunked mid-block attention (as the Node WebGPU test)
    results.push(
      await runChecks(
        repo,
        'vae',
        buildVaeDecoderGraph(model.vae.config, model.vae.weights, {
          batch: 1,
          height: h,
          width: w,
          compute: 'float32',
          maxBindingBytes: k === 1 ? 8192 : undefined,
        }),
        files,
        va,
        [{ prefix: `case${c.index}`, feeds: {}, outputs: { image: 'image' } }],
      ),
    );
  }
  return results;
}
