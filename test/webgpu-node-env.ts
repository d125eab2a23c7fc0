/** `SKIP_WEBGPU=1` (any value but empty, 0 or false): the user opted out of the WebGPU tests in Node. */
export function webgpuSkipRequested(env: Record<string, string | undefined> = process.env): boolean {
  const v = env.SKIP_WEBGPU;
  return !!v && v !== '0' && v !== 'false';
}
