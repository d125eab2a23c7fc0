/**
 * Compares the tensors of an output safetensors file with the expected ones (goldens): per tensor max |err|,
 * max |ref| and their ratio. `npx tsx scripts/fullsize/compare.ts OUT.safetensors EXPECTED.safetensors`.
 */
import { readSafetensorsHeader, readTensorF32 } from '../../workers/model/safetensors';
import { fileSource } from '../../workers/model/safetensors.node.js';

export interface TensorDiff {
  name: string;
  maxAbsErr: number;
  maxAbsRef: number;
  /** maxAbsErr / maxAbsRef */
  rel: number;
}

export async function compareFiles(outPath: string, expectedPath: string, only?: string[]): Promise<TensorDiff[]> {
  const out = await readSafetensorsHeader(fileSource(outPath));
  const exp = await readSafetensorsHeader(fileSource(expectedPath));
  const diffs: TensorDiff[] = [];
  for (const name of [...exp.tensors.keys()].sort()) {
    if (only && !only.includes(name)) continue;
    if (!out.tensors.has(name)) {
      if (only) throw new Error(`${outPath}: no tensor "${name}"`);
      continue;
    }
    const a = await readTensorF32(out, name);
    const b = await readTensorF32(exp, name);
    if (a.length !== b.length) throw new Error(`${name}: ${a.length} values in ${outPath}, ${b.length} expected`);
    let err = 0;
    let ref = 0;
    for (let i = 0; i < a.length; i++) {
      const d = Math.abs(a[i]! - b[i]!);
      err = d > err || Number.isNaN(d) ? (Number.isNaN(d) ? Infinity : d) : err;
      ref = Math.max(ref, Math.abs(b[i]!));
    }
    diffs.push({ name, maxAbsErr: err, maxAbsRef: ref, rel: err / (ref || 1) });
  }
  return diffs;
}

if (process.argv[1]?.endsWith('compare.ts')) {
  const [outPath, expectedPath] = process.argv.slice(2);
  if (!outPath || !expectedPath) {
    console.error('usage: npx tsx scripts/fullsize/compare.ts OUT.safetensors EXPECTED.safetensors');
    process.exit(2);
  }
  for (const d of await compareFiles(outPath, expectedPath)) {
    console.log(
      `${d.name.padEnd(32)} max|err| ${d.maxAbsErr.toExponential(3)}  max|ref| ${d.maxAbsRef.toExponential(3)}  rel ${d.rel.toExponential(3)}`,
    );
  }
}
