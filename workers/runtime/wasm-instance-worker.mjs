/* global process */
/**
 * Node worker thread that owns ONE onnxruntime-web wasm instance (its own 32-bit heap, up to 4 GiB) and
 * the sessions created in it. Driven by wasm-instances.node.ts over postMessage:
 *   { op: 'create', id, model, externalData: [{ path, data }] }  -> { id, inputNames, outputNames }
 *   { op: 'run', id, feeds: { name: { type, dims, data } } }     -> { id, outputs: { name: { type, dims, data } } }
 *   { op: 'release', id }                                        -> { id }
 * Every reply carries `error` (a message) instead when the call failed. Plain JS so it runs as it is under
 * tsx, Vitest and plain Node alike; it imports nothing of the project.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-web';

ort.env.wasm.numThreads = workerData?.numThreads ?? 1;
ort.env.logLevel = workerData?.logLevel ?? 'error';

/** @type {Map<number, import('onnxruntime-web').InferenceSession>} */
const sessions = new Map();

function plain(t) {
  return { type: t.type, dims: [...t.dims], data: t.data };
}

async function handle(msg) {
  if (msg.op === 'create') {
    const s = await ort.InferenceSession.create(msg.model, {
      executionProviders: ['wasm'],
      externalData: msg.externalData,
      graphOptimizationLevel: 'all',
    });
    sessions.set(msg.id, s);
    return { inputNames: s.inputNames, outputNames: s.outputNames };
  }
  const s = sessions.get(msg.id);
  if (!s) throw new Error(`no session ${msg.id} in this wasm instance`);
  if (msg.op === 'run') {
    const feeds = {};
    for (const [name, f] of Object.entries(msg.feeds)) feeds[name] = new ort.Tensor(f.type, f.data, f.dims);
    const res = await s.run(feeds);
    const outputs = {};
    const transfer = [];
    for (const [name, t] of Object.entries(res)) {
      outputs[name] = plain(t);
      transfer.push(t.data.buffer);
    }
    return { outputs, transfer };
  }
  if (msg.op === 'release') {
    sessions.delete(msg.id);
    await s.release();
    return {};
  }
  throw new Error(`unknown op ${msg.op}`);
}

parentPort.on('message', (msg) => {
  handle(msg).then(
    (r) => {
      const { transfer, ...rest } = r;
      parentPort.postMessage({ id: msg.id, seq: msg.seq, ...rest }, transfer ?? []);
    },
    (e) => parentPort.postMessage({ id: msg.id, seq: msg.seq, error: String(e?.message ?? e) }),
  );
});

process.on('unhandledRejection', (e) => parentPort.postMessage({ fatal: String(e?.message ?? e) }));
