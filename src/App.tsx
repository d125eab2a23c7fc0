import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import type { CachedModel, Capabilities, GenerateParams, ModelSource, ProgressEvent, PreviewEvent } from '../workers/protocol';
import { assess } from './capabilities';
import { EngineClient, EngineClientError, createEngineWorker, type RestartInfo, type TaskHandle } from './engine-client';
import type { ResultEvent } from '../workers/protocol';
import { deleteFromGallery, listGallery, newGalleryId, saveToGallery, type GalleryItem } from './gallery';
import { findModel } from './models';
import { ortWasmBase } from './ort-assets';
import {
  applyModelDefaults,
  loadStoredSettings,
  randomSeed,
  settingsFromUrl,
  settingsToUrl,
  storeSettings,
  type Settings,
} from './settings';
import { useTheme } from './hooks/useTheme';
import { useTokenCount } from './hooks/useTokenCount';
import { Controls } from './components/Controls';
import { CapabilityBanner } from './components/CapabilityBanner';
import { ProgressPanel } from './components/ProgressPanel';
import { ResultActions, Stage } from './components/ResultView';
import { Gallery } from './components/Gallery';
import { CacheList } from './components/CacheList';

function initialSettings(): Settings {
  const stored = loadStoredSettings(window.localStorage);
  return settingsFromUrl(stored, window.location.search).settings;
}

export function modelSource(s: Settings, precision: 'fp16' | 'fp32'): ModelSource {
  const m = findModel(s.model);
  const hubUrl = m.bundled ? new URL(`${import.meta.env.BASE_URL}demo-hub`, window.location.href).href : s.hub || undefined;
  return {
    repo: s.model,
    revision: s.revision || 'main',
    variant: precision === 'fp16' && m.fp16Variant ? 'fp16' : undefined,
    hubUrl,
  };
}

let theClient: EngineClient | null = null;
const restartListeners = new Set<(info: RestartInfo) => void>();

/** The page's one engine client (and so one worker), created on first use; StrictMode-safe. */
export function sharedClient(): EngineClient {
  theClient ??= new EngineClient({
    createWorker: createEngineWorker,
    ortWasmBase: ortWasmBase(),
    onRestart: (info) => restartListeners.forEach((l) => l(info)),
  });
  return theClient;
}

function onEngineRestart(listener: (info: RestartInfo) => void): () => void {
  restartListeners.add(listener);
  return () => restartListeners.delete(listener);
}

const ERROR_TITLES: Record<string, string> = {
  'webgpu-unavailable': 'WebGPU is not available',
  'shader-f16-missing': 'This GPU cannot run fp16',
  'limits-too-low': 'GPU limits too low',
  'quota-exceeded': 'Not enough browser storage',
  network: 'Could not reach the model hub',
  integrity: 'A downloaded file was damaged',
  'device-lost': 'The GPU was reset',
  'out-of-memory': 'Out of memory',
  'bad-input': 'These settings cannot be used',
  internal: 'The engine failed',
  'worker-crashed': 'The engine crashed',
};

interface Failure {
  code: string;
  message: string;
}

export function App() {
  const [settings, setSettings] = useState<Settings>(initialSettings);
  const [caps, setCaps] = useState<Capabilities | null>(null);
  const [probeError, setProbeError] = useState<string | null>(null);
  const [progress, setProgress] = useState<ProgressEvent | null>(null);
  const [queued, setQueued] = useState<number | null>(null);
  const [busy, setBusy] = useState(false);
  const [hasPreview, setHasPreview] = useState(false);
  const [failure, setFailure] = useState<Failure | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [gallery, setGallery] = useState<GalleryItem[]>([]);
  const [selected, setSelected] = useState<GalleryItem | null>(null);
  const [cached, setCached] = useState<CachedModel[] | null>(null);
  const [theme, toggleTheme] = useTheme();
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const busyRef = useRef(false);
  const handleRef = useRef<TaskHandle<ResultEvent> | null>(null);

  const client = sharedClient();
  const runProbe = useCallback(() => {
    setProbeError(null);
    client.probe().then(setCaps, (err: unknown) => setProbeError((err as Error).message));
  }, [client]);

  const refreshCache = useCallback(() => {
    client.listCache().then(setCached, () => setCached(null));
  }, [client]);

  useEffect(
    () =>
      onEngineRestart((info) => {
        setNotice(
          `The engine restarted (${info.reason}): ${info.message} Your gallery is intact; the model reloads from the browser cache.`,
        );
        runProbe();
        refreshCache();
      }),
    [runProbe, refreshCache],
  );

  useEffect(() => {
    runProbe();
    refreshCache();
  }, [runProbe, refreshCache]);

  useEffect(() => {
    listGallery().then(
      (items) => {
        setGallery(items);
        setSelected((cur) => cur ?? items[0] ?? null);
      },
      (err: unknown) => setNotice(`The gallery could not be read: ${(err as Error).message}`),
    );
  }, []);

  useEffect(() => {
    storeSettings(window.localStorage, settings);
  }, [settings]);

  const model = findModel(settings.model);
  const assessment = useMemo(() => assess(caps, model, settings.width, settings.height), [caps, model, settings.width, settings.height]);
  const hubUrl = modelSource(settings, assessment.precision).hubUrl ?? 'https://huggingface.co';
  const isCached = !!cached?.some(
    (c) => c.complete && c.repo === settings.model && c.hubUrl.replace(/\/+$/, '') === hubUrl.replace(/\/+$/, ''),
  );
  const source = modelSource(settings, assessment.precision);
  const tokens = useTokenCount(client, source, settings.prompt, settings.promptStyle);
  const negTokens = useTokenCount(client, source, settings.negativePrompt, settings.promptStyle);

  const patch = useCallback((p: Partial<Settings>) => setSettings((s) => ({ ...s, ...p })), []);
  const changeModel = useCallback((repo: string) => setSettings((s) => applyModelDefaults(s, repo)), []);

  const drawPreview = useCallback((e: PreviewEvent) => {
    const canvas = canvasRef.current;
    if (!canvas) return;
    if (canvas.width !== e.width || canvas.height !== e.height) {
      canvas.width = e.width;
      canvas.height = e.height;
    }
    const ctx = canvas.getContext('2d');
    if (!ctx) return;
    ctx.putImageData(new ImageData(new Uint8ClampedArray(e.rgba), e.width, e.height), 0, 0);
    setHasPreview(true);
  }, []);

  const generate = useCallback(async () => {
    if (busyRef.current) return; // a double click or repeated Ctrl+Enter generates once
    busyRef.current = true;
    setBusy(true);
    setFailure(null);
    setProgress(null);
    setQueued(null);
    setHasPreview(false);
    const seed = settings.seedLocked ? settings.seed : randomSeed();
    const used: Settings = { ...settings, seed };
    if (seed !== settings.seed) setSettings((s) => ({ ...s, seed }));
    const params: GenerateParams = {
      model: modelSource(used, assessment.precision),
      prompt: used.prompt,
      negativePrompt: used.negativePrompt === '' ? undefined : used.negativePrompt,
      steps: used.steps,
      guidance: used.guidance,
      scheduler: used.scheduler,
      timestepSpacing: used.spacing,
      width: used.width,
      height: used.height,
      seed,
      numImages: used.numImages,
      precision: assessment.precision,
      previewEvery: 1,
      promptStyle: used.promptStyle,
    };
    const started = performance.now();
    const canvas = canvasRef.current;
    if (canvas) {
      canvas.style.setProperty('--ratio', String(used.width / used.height));
    }
    if (window.matchMedia?.('(max-width: 860px)').matches) {
      document.querySelector('.main')?.scrollIntoView({ behavior: 'smooth', block: 'start' });
    }
    const handle = client.generate(params);
    handleRef.current = handle;
    handle.subscribe((e) => {
      if (e.type === 'progress') {
        setQueued(null);
        setProgress(e);
      } else if (e.type === 'preview') drawPreview(e);
      else if (e.type === 'queued') setQueued(e.position);
      else if (e.type === 'started') setQueued(null);
    });
    try {
      const result = await handle.result;
      const seconds = (performance.now() - started) / 1000;
      const items: GalleryItem[] = result.images.map((img, i) => ({
        id: newGalleryId(),
        createdAt: Date.now() + i,
        png: img.png,
        width: img.width,
        height: img.height,
        seed: img.seed,
        parameters: img.parameters,
        params: { ...result.params, seed: img.seed, numImages: 1 },
        settings: { ...used, seed: img.seed, seedLocked: true, numImages: 1 },
        seconds,
      }));
      await Promise.all(items.map(saveToGallery)).catch((err: unknown) =>
        setNotice(`Images could not be saved to the gallery (${(err as Error).message}); download them now.`),
      );
      setGallery((g) => [...items.slice().reverse(), ...g]);
      setSelected(items[0] ?? null);
    } catch (err) {
      const e = err instanceof EngineClientError ? err : new EngineClientError('internal', String((err as Error)?.message ?? err));
      setFailure(e.code === 'cancelled' ? { code: 'cancelled', message: 'Cancelled.' } : { code: e.code, message: e.message });
      if (e.code === 'worker-crashed' || e.code === 'device-lost' || e.code === 'out-of-memory') runProbe();
    } finally {
      refreshCache();
      handleRef.current = null;
      busyRef.current = false;
      setBusy(false);
      setProgress(null);
      setQueued(null);
      setHasPreview(false);
    }
  }, [settings, assessment.precision, client, drawPreview, runProbe, refreshCache]);

  const cancel = useCallback(() => {
    handleRef.current?.cancel();
  }, []);

  const share = useCallback(async (s: Settings) => {
    const url = settingsToUrl(s, window.location.href);
    window.history.replaceState(null, '', url);
    try {
      await navigator.clipboard.writeText(url);
      setNotice('Link copied: it opens the page with these settings.');
    } catch {
      setNotice(`Share this link: ${url}`);
    }
  }, []);

  const reuse = useCallback((item: GalleryItem) => {
    setSettings(item.settings);
    setSelected(item);
  }, []);

  const remove = useCallback(async (item: GalleryItem) => {
    await deleteFromGallery(item.id);
    setGallery((g) => g.filter((x) => x.id !== item.id));
    setSelected((cur) => (cur?.id === item.id ? null : cur));
  }, []);

  const deleteCached = useCallback(
    async (m: CachedModel) => {
      try {
        await client.deleteCache(m.repo, m.commit);
      } catch (err) {
        setNotice(`Could not delete ${m.repo}: ${(err as Error).message}`);
      }
      refreshCache();
    },
    [client, refreshCache],
  );

  const blocked = assessment.level === 'error' || probeError !== null;
  const showPreview = busy && hasPreview;

  return (
    <div className="app">
      <header className="topbar">
        <div className="brand">
          <svg viewBox="0 0 64 64" aria-hidden="true" className="logo">
            <circle cx="16" cy="20" r="12" />
            <circle cx="48" cy="20" r="12" />
            <ellipse cx="32" cy="36" rx="20" ry="22" />
            <ellipse className="nose" cx="32" cy="40" rx="6" ry="8" />
          </svg>
          <div>
            <h1>KOALA web</h1>
            <p className="muted small">Text-to-image on your own GPU. Prompts and images never leave this device.</p>
          </div>
        </div>
        <div className="top-actions">
          <button type="button" onClick={() => void share(settings)}>
            Share settings
          </button>
          <button
            type="button"
            className="icon"
            aria-label="Dark theme"
            aria-pressed={theme === 'dark'}
            onClick={toggleTheme}
            title="Toggle dark theme"
          >
            <svg viewBox="0 0 24 24" aria-hidden="true">
              {theme === 'dark' ? (
                <path d="M21 12.8A9 9 0 1 1 11.2 3a7 7 0 0 0 9.8 9.8z" />
              ) : (
                <>
                  <circle className="outline" cx="12" cy="12" r="4" />
                  <path d="M12 2v2M12 20v2M4.9 4.9l1.4 1.4M17.7 17.7l1.4 1.4M2 12h2M20 12h2M4.9 19.1l1.4-1.4M17.7 6.3l1.4-1.4" />
                </>
              )}
            </svg>
          </button>
        </div>
      </header>

      <aside className="panel">
        <CapabilityBanner caps={caps} assessment={assessment} probeError={probeError} cached={isCached} />
        <Controls
          settings={settings}
          onChange={patch}
          onModelChange={changeModel}
          onGenerate={() => void generate()}
          onCancel={cancel}
          busy={busy}
          canGenerate={!blocked}
          generateHint={blocked ? 'Generation needs a working WebGPU adapter (see above).' : undefined}
          tokens={tokens}
          negativeTokens={negTokens}
        />
        <CacheList models={cached} onDelete={(m) => void deleteCached(m)} />
      </aside>

      <main className="main">
        {notice && (
          <div className="notice" role="status">
            <p>{notice}</p>
            <button type="button" className="small" onClick={() => setNotice(null)}>
              Dismiss
            </button>
          </div>
        )}
        {failure && (
          <div className={`failure ${failure.code === 'cancelled' ? 'muted-box' : ''}`} role="alert">
            <strong>
              {failure.code === 'cancelled' ? 'Cancelled' : `${ERROR_TITLES[failure.code] ?? 'Something went wrong'} (${failure.code})`}
            </strong>
            {failure.code !== 'cancelled' && <p>{failure.message}</p>}
          </div>
        )}
        {busy && <ProgressPanel progress={progress} queued={queued} />}
        <Stage
          ref={canvasRef}
          showPreview={showPreview}
          item={busy ? null : selected}
          placeholder={busy ? 'The preview appears after the first step.' : 'Type a prompt and press Generate.'}
        />
        {!busy && selected && <ResultActions item={selected} onShare={() => void share(selected.settings)} />}
        <Gallery
          items={gallery}
          selectedId={selected?.id ?? null}
          onSelect={setSelected}
          onReuse={reuse}
          onDelete={(i) => void remove(i)}
        />
      </main>
    </div>
  );
}
