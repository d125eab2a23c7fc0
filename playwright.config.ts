/**
 * Playwright: the BUILT page (`vite build --mode test`, served by `vite preview`) in Debian's Chromium,
 * with WebGPU through SwiftShader, against the mock hub serving test/fixtures (repo `test/tiny-sdxl`).
 *
 * WebGPU in headless Chromium 156 here needs exactly: --enable-unsafe-webgpu --use-webgpu-adapter=swiftshader
 * (checked: requestAdapter() gives vendor "google", architecture "swiftshader", no shader-f16,
 * maxBufferSize = maxStorageBufferBindingSize = 1 GiB; --enable-features=Vulkan changes nothing).
 * Without those flags navigator.gpu exists but requestAdapter() returns null: the `no-webgpu` project.
 * navigator.gpu needs a secure context: http://127.0.0.1 counts, data: URLs do not.
 */
import { defineConfig } from '@playwright/test';

/** Override with KOALA_E2E_PORT / KOALA_E2E_HUB_PORT when another run holds the defaults. */
export const PAGE_PORT = Number(process.env.KOALA_E2E_PORT ?? 4173);
export const HUB_PORT = Number(process.env.KOALA_E2E_HUB_PORT ?? 8123);
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const COMMON_ARGS = ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-dev-shm-usage'];
export const WEBGPU_ARGS = ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'];

export default defineConfig({
  testDir: 'e2e',
  timeout: 120_000,
  expect: { timeout: 15_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: process.env.CI ? [['list'], ['html', { open: 'never' }]] : 'list',
  use: {
    baseURL: `http://127.0.0.1:${PAGE_PORT}`,
    trace: 'retain-on-failure',
    acceptDownloads: true,
  },
  projects: [
    {
      name: 'webgpu',
      testIgnore: /no-webgpu\.spec\.ts/,
      use: { launchOptions: { executablePath: CHROMIUM, args: [...COMMON_ARGS, ...WEBGPU_ARGS] } },
    },
    {
      name: 'no-webgpu',
      testMatch: /no-webgpu\.spec\.ts/,
      use: { launchOptions: { executablePath: CHROMIUM, args: COMMON_ARGS } },
    },
  ],
  webServer: [
    {
      command: `npx vite preview --mode test --port ${PAGE_PORT} --strictPort --host 127.0.0.1`,
      url: `http://127.0.0.1:${PAGE_PORT}/`,
      reuseExistingServer: !process.env.CI,
      timeout: 60_000,
    },
    {
      command: `npx tsx scripts/mock-hub.ts --root test/fixtures --port ${HUB_PORT}`,
      url: `http://127.0.0.1:${HUB_PORT}/api/models/test/tiny-sdxl/revision/main`,
      reuseExistingServer: !process.env.CI,
      timeout: 60_000,
    },
  ],
});
