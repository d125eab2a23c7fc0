/**
 * `npm run fullsize:checkpoint -- --out DIR [--model koala-700m|koala-1b|sdxl-base] [--seed N] [--variants fp32,fp16] [--fresh]`
 * Writes a seeded random-weight full-size checkpoint in diffusers layout (checkpoint.ts). Exit 2 on bad options.
 */
import { parseArgs } from 'node:util';
import { checkpointBytes, FULLSIZE_MODELS, writeRandomCheckpoint, type FullsizeModel, type Variant } from './checkpoint';

function usage(message: string): never {
  console.error(
    `${message}\nusage: npm run fullsize:checkpoint -- --out DIR [--model ${FULLSIZE_MODELS.join('|')}] [--seed N] [--variants fp32,fp16] [--fresh]`,
  );
  process.exit(2);
}

let values: Record<string, string | boolean | undefined>;
try {
  ({ values } = parseArgs({
    options: {
      out: { type: 'string' },
      model: { type: 'string' },
      seed: { type: 'string' },
      variants: { type: 'string' },
      fresh: { type: 'boolean' },
    },
  }));
} catch (e) {
  usage((e as Error).message);
}
if (!values.out) usage('missing --out');
const model = (values.model ?? 'koala-700m') as FullsizeModel;
if (!FULLSIZE_MODELS.includes(model)) usage(`--model must be one of ${FULLSIZE_MODELS.join(', ')}, got "${model}"`);
const seed = Number(values.seed ?? 1);
if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) usage(`--seed must be an integer 0..4294967295, got "${values.seed}"`);
const variants = String(values.variants ?? 'fp32,fp16').split(',') as Variant[];
if (!variants.length || variants.some((v) => v !== 'fp32' && v !== 'fp16'))
  usage(`--variants must list fp32 and/or fp16, got "${values.variants}"`);

console.error(
  `[fullsize:checkpoint] ${model}, seed ${seed}, ${variants.join(' + ')}: ${(checkpointBytes(model, variants) / 2 ** 30).toFixed(1)} GiB into ${values.out}`,
);
try {
  const info = writeRandomCheckpoint({
    out: String(values.out),
    model,
    seed,
    variants,
    fresh: !!values.fresh,
    log: (l) => console.error(`[fullsize:checkpoint] ${l}`),
  });
  console.error(`[fullsize:checkpoint] ${info.bytesWritten ? `done in ${info.seconds.toFixed(1)} s` : 'already complete'}: ${info.dir}`);
} catch (e) {
  console.error(`[fullsize:checkpoint] ${(e as Error).message}`);
  process.exit(1);
}
