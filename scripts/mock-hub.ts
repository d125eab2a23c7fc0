/**
 * npm run mock-hub -- --root DIR [--port N] [--host H] [--no-redirect] [--tree-page-size N]
 * Serves the diffusers folders under DIR as hub repos (DIR/<org>/<name> or DIR/<name>, any org).
 * Example: npm run mock-hub -- --root test/fixtures --port 8123  ->  repo id `test/tiny-sdxl`.
 */
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { startMockHub } from './mock-hub/server';

const { values } = parseArgs({
  options: {
    root: { type: 'string', default: 'test/fixtures' },
    port: { type: 'string', default: '8123' },
    host: { type: 'string', default: '127.0.0.1' },
    'no-redirect': { type: 'boolean', default: false },
    'tree-page-size': { type: 'string' },
  },
});

const hub = await startMockHub({
  root: resolve(values.root!),
  port: Number(values.port),
  host: values.host,
  redirectLfs: !values['no-redirect'],
  treePageSize: values['tree-page-size'] ? Number(values['tree-page-size']) : undefined,
});
console.log(`mock hub serving ${resolve(values.root!)} at ${hub.url}`);
console.log(`  try: curl ${hub.url}/api/models/test/tiny-sdxl/revision/main`);
console.log(`  faults: curl -X POST ${hub.url}/__faults -d '[{"kind":"drop","path":"unet","afterBytes":100000}]'`);
const stop = async () => {
  await hub.close();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
