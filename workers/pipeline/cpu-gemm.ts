/**
 * C = A·B on onnxruntime-web's wasm backend (SIMD, and threads where the page is cross-origin isolated):
 * what fusing a LoRA spends its time on (up·down for every changed weight). About 30× the speed of the
 * plain-JS loop in workers/model/lora.ts on this machine's two cores. One tiny MatMul session per shape,
 * kept while the function lives.
 */
import { GraphBuilder } from '../model/graph';
import type { LoraGemm } from '../model/lora';
import { WeightIndex } from '../model/weights';
import type { OrtModule } from './ort-backend';

export function createOrtGemm(ort: OrtModule): LoraGemm {
  const sessions = new Map<string, ReturnType<OrtModule['InferenceSession']['create']>>();
  const session = (m: number, k: number, n: number) => {
    const key = `${m}x${k}x${n}`;
    let s = sessions.get(key);
    if (!s) {
      const g = new GraphBuilder({ name: 'lora_gemm', weights: new WeightIndex([]), compute: 'float32' });
      const a = g.input('a', 'float32', [m, k]);
      const b = g.input('b', 'float32', [k, n]);
      g.output(g.op1('MatMul', [a, b]), 'c');
      s = ort.InferenceSession.create(g.build().model, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
      s.catch(() => sessions.delete(key));
      sessions.set(key, s);
    }
    return s;
  };
  return async (a, b, m, k, n) => {
    const s = await session(m, k, n);
    const out = await s.run({ a: new ort.Tensor('float32', a, [m, k]), b: new ort.Tensor('float32', b, [k, n]) });
    return out['c']!.data as Float32Array;
  };
}
