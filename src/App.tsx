import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import type { CachedModel, Capabilities, GenerateParams, LoraSource, ModelSource, ProgressEvent, PreviewEvent } from '../workers/protocol';
import { assess } from './capabilities';
import { EngineClient, EngineClientError, createEngineWorker, type RestartInfo, type TaskHandle } from './engine-client';
import type { ResultEvent } from '../workers/protocol';
import { deleteFromGallery, listGallery, newGalleryId, saveToGallery, type GalleryItem } from './gallery';
import {
  activeLoraRefs,
  cannotAdd,
  deleteLora,
  inspectRef,
  listLoras,
  newLora,
  saveLora,
  uniqueName,
  type StoredLora,
} from './lora-store';
import { findModel } from './models';
import { describeInput, imageFileOf, loadInputs, saveInputImage, saveMask, toSavedParams, type InputImage } from './input-image';
import { ortWasmBase } from './ort-assets';
import {
  applyModelDefaults,
  FP16_VAE_REPO,
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
import { LoraPanel, type LoraStatus } from './components/LoraPanel';
import { InputImagePanel } from './components/InputImagePanel';

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

const EMPTY_STATUS: Record<string, LoraStatus> = {};

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

/** Identifies a loaded model in the engine: LoRA reports hold for this model, at this precision. */
function modelKeyOf(m: ModelSource, precision: string): string {
  return JSON.stringify([m.repo, m.revision ?? 'main', m.variant ?? '', m.hubUrl ?? '', precision]);
}

/** A bad-input message about one of the LoRAs sent (the engine names the LoRA in it). */
function namesLora(message: string, name: string): boolean {
  return name.length >= 3 ? message.includes(name) : message.includes(`LoRA ${name}:`) || message.startsWith(`${name} `);
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
  const [loras, setLoras] = useState<StoredLora[]>([]);
  /** LoRA status per model key, then per LoRA id. */
  const [loraStatus, setLoraStatus] = useState<Record<string, Record<string, LoraStatus>>>({});
  /** Key of the model the engine has loaded (after a successful generate): only then may a LoRA be inspected. */
  const [loadedKey, setLoadedKey] = useState<string | null>(null);
  const inspecting = useRef(new Set<string>());
  /** Image modes: the input image (with its decoded size) and the painted mask (white = repaint). */
  const [input, setInputState] = useState<InputImage | null>(null);
  const [mask, setMaskState] = useState<Blob | null>(null);
  const inputTouched = useRef(false);
  const inputRef = useRef<InputImage | null>(null);
  inputRef.current = input;

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
        setLoadedKey(null);
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
    listLoras().then(setLoras, (err: unknown) => setNotice(`The LoRA list could not be read: ${(err as Error).message}`));
  }, []);

  useEffect(() => {
    storeSettings(window.localStorage, settings);
  }, [settings]);

  // The input image and mask of the last visit (unless the user already picked one).
  useEffect(() => {
    loadInputs().then(
      (kept) => {
        if (inputTouched.current) return;
        setInputState(kept.input);
        setMaskState(kept.input ? kept.mask : null);
      },
      () => undefined,
    );
  }, []);

  const setMask = useCallback((m: Blob | null) => {
    setMaskState(m);
    saveMask(m).catch(() => undefined);
  }, []);

  /** A new input image; the mask stays when the new image has the old one's size, else it is cleared. */
  const setInput = useCallback(
    async (blob: Blob, name: string) => {
      inputTouched.current = true;
      const next = await describeInput(blob, name);
      const prev = inputRef.current;
      if (!prev || prev.width !== next.width || prev.height !== next.height) setMask(null);
      setInputState(next);
      saveInputImage(next).catch((err: unknown) => setNotice(`The input image could not be kept in this browser: ${(err as Error).message}`));
    },
    [setMask],
  );

  const removeInput = useCallback(() => {
    inputTouched.current = true;
    setInputState(null);
    setMask(null);
    saveInputImage(null).catch(() => undefined);
  }, [setMask]);

  // Ctrl+V anywhere on the page puts a copied image in, in the image modes.
  useEffect(() => {
    if (settings.mode === 'txt2img') return;
    const onPaste = (e: ClipboardEvent) => {
      const f = imageFileOf(e.clipboardData);
      if (!f) return;
      e.preventDefault();
      void setInput(f, f.name && f.name !== 'image.png' ? f.name : 'pasted image');
    };
    document.addEventListener('paste', onPaste);
    return () => document.removeEventListener('paste', onPaste);
  }, [settings.mode, setInput]);

  const model = findModel(settings.model);
  const assessment = useMemo(() => assess(caps, model, settings.width, settings.height), [caps, model, settings.width, settings.height]);
  const hubUrl = modelSource(settings, assessment.precision).hubUrl ?? 'https://huggingface.co';
  const isCached = !!cached?.some(
    (c) => c.complete && c.repo === settings.model && c.hubUrl.replace(/\/+$/, '') === hubUrl.replace(/\/+$/, ''),
  );
  const source = modelSource(settings, assessment.precision);
  const modelKey = modelKeyOf(source, assessment.precision);
  const modelLoaded = loadedKey === modelKey;
  const currentStatus = loraStatus[modelKey] ?? EMPTY_STATUS;
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
    const mode = used.mode !== 'txt2img' && input ? used.mode : 'txt2img';
    if (mode !== 'txt2img' && input) {
      params.initImage = input.blob;
      params.strength = used.strength;
      if (mode === 'inpaint' && mask) params.maskImage = mask;
    }
    if (used.fastDecode) params.decoder = 'taesd';
    if (used.fp16Vae) params.vaeRepo = FP16_VAE_REPO;
    if (used.previewer === 'taesd') params.previewer = 'taesd';
    if ((used.fastDecode || used.previewer === 'taesd') && used.taesdRepo) params.taesdRepo = used.taesdRepo;
    const sent = activeLoraRefs(loras);
    if (sent.length) params.loras = sent;
    const sentIds = new Map(loras.map((l) => [l.name, l.id]));
    const genKey = modelKeyOf(params.model, assessment.precision);
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
        params: toSavedParams({ ...result.params, seed: img.seed, numImages: 1 }, mode),
        settings: { ...used, seed: img.seed, seedLocked: true, numImages: 1 },
        seconds,
      }));
      await Promise.all(items.map(saveToGallery)).catch((err: unknown) =>
        setNotice(`Images could not be saved to the gallery (${(err as Error).message}); download them now.`),
      );
      setGallery((g) => [...items.slice().reverse(), ...g]);
      setSelected(items[0] ?? null);
      setLoadedKey(genKey);
      const reports = result.stats.loras ?? [];
      if (reports.length) {
        setLoraStatus((all) => {
          const byId = { ...all[genKey] };
          for (const r of reports) {
            const id = sentIds.get(r.name);
            if (id) byId[id] = { kind: 'report', report: r };
          }
          return { ...all, [genKey]: byId };
        });
      }
    } catch (err) {
      const e = err instanceof EngineClientError ? err : new EngineClientError('internal', String((err as Error)?.message ?? err));
      // A refused LoRA: the engine opens LoRAs after the model loaded, so the model is loaded now. A partial
      // match is left to the inspection (its report offers "apply anyway"); anything else is that row's error.
      const refused = e.code === 'bad-input' ? sent.filter((r) => namesLora(e.message, r.name)) : [];
      if (refused.length) {
        setLoadedKey(genKey);
        if (!/modules match this model/.test(e.message)) {
          setLoraStatus((all) => {
            const byId = { ...all[genKey] };
            for (const r of refused) {
              const id = sentIds.get(r.name);
              if (id) byId[id] = { kind: 'error', message: e.message };
            }
            return { ...all, [genKey]: byId };
          });
        }
      }
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
  }, [settings, assessment.precision, client, drawPreview, runProbe, refreshCache, loras, input, mask]);

  // Check LoRAs whose report is unknown, but only against a model the engine already has loaded: an
  // inspection loads the model otherwise, and a saved list must never start a download on page open.
  useEffect(() => {
    if (busy || !modelLoaded) return;
    const key = modelKey;
    for (const l of loras) {
      if (currentStatus[l.id] || inspecting.current.has(`${key}|${l.id}`)) continue;
      const tag = `${key}|${l.id}`;
      inspecting.current.add(tag);
      const put = (st: LoraStatus | null) =>
        setLoraStatus((all) => {
          const byId = { ...all[key] };
          if (st) byId[l.id] = st;
          else delete byId[l.id];
          return { ...all, [key]: byId };
        });
      put({ kind: 'checking' });
      client
        .inspectLora(source, inspectRef(l), { precision: assessment.precision })
        .result.then(
          (report) => put({ kind: 'report', report }),
          (err: unknown) => {
            const code = err instanceof EngineClientError ? err.code : 'internal';
            // Cancelled or a restarted worker: unknown again (checked after the next load).
            if (code === 'cancelled' || code === 'worker-crashed') put(null);
            else put({ kind: 'error', message: (err as Error).message });
          },
        )
        .finally(() => inspecting.current.delete(tag));
    }
  }, [busy, modelLoaded, modelKey, loras, currentStatus, client, source, assessment.precision]);

  const addLora = useCallback(
    async (src: LoraSource): Promise<string | undefined> => {
      const why = cannotAdd(loras, src);
      if (why) return why;
      const l = newLora(src);
      l.name = uniqueName(loras, l.name);
      try {
        await saveLora(l, true);
      } catch (err) {
        return `Could not keep ${l.name} in this browser: ${(err as Error).message}`;
      }
      setLoras((list) => [...list, l]);
      return undefined;
    },
    [loras],
  );

  const updateLora = useCallback((id: string, patch: Partial<Pick<StoredLora, 'scale' | 'enabled' | 'allowPartial'>>) => {
    setLoras((list) =>
      list.map((l) => {
        if (l.id !== id) return l;
        const next = { ...l, ...patch };
        saveLora(next).catch(() => undefined);
        return next;
      }),
    );
  }, []);

  const removeLora = useCallback((id: string) => {
    setLoras((list) => list.filter((l) => l.id !== id));
    deleteLora(id).catch(() => undefined);
  }, []);

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

  const reuse = useCallback(
    (item: GalleryItem) => {
      // Older items have no mode/decoder settings: they were text to image with the full decoder.
      setSettings((cur) => ({ ...cur, mode: 'txt2img', fastDecode: false, previewer: 'linear', ...(item.settings as Partial<Settings>) }));
      setSelected(item);
      // The item's LoRAs at their scales, the others off; a LoRA no longer in the list is named.
      const used = item.params.loras ?? [];
      const missing = used.filter((u) => !loras.some((l) => l.name === u.name)).map((u) => u.name);
      for (const l of loras) {
        const u = used.find((x) => x.name === l.name);
        const patch = u ? { enabled: true, scale: u.scale, allowPartial: !!u.allowPartial } : { enabled: false };
        if (Object.entries(patch).some(([k, v]) => l[k as keyof StoredLora] !== v)) updateLora(l.id, patch);
      }
      if (missing.length) setNotice(`Not in your LoRA list any more: ${missing.join(', ')}. Add them again to reproduce this image.`);
    },
    [loras, updateLora],
  );

  const useAsInput = useCallback(
    (item: GalleryItem) => {
      void setInput(item.png, `gallery image, seed ${item.seed}`);
      setSettings((s) => (s.mode === 'txt2img' ? { ...s, mode: 'img2img' } : s));
      document.querySelector('.input-image')?.scrollIntoView({ behavior: 'smooth', block: 'nearest' });
    },
    [setInput],
  );

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
  const inputMissing =
    settings.mode === 'txt2img'
      ? null
      : !input
        ? 'Add an input image first: drop it on the input box, paste it (Ctrl+V) or choose a file.'
        : settings.mode === 'inpaint' && !mask && input.width
          ? 'Paint the area to repaint on the input image (or load a mask) first.'
          : null;
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
          canGenerate={!blocked && !inputMissing}
          generateHint={blocked ? 'Generation needs a working WebGPU adapter (see above).' : (inputMissing ?? undefined)}
          tokens={tokens}
          negativeTokens={negTokens}
          inputPanel={
            settings.mode !== 'txt2img' && (
              <InputImagePanel
                mode={settings.mode}
                input={input}
                mask={mask}
                strength={settings.strength}
                width={settings.width}
                height={settings.height}
                onInput={(b, n) => void setInput(b, n)}
                onRemoveInput={removeInput}
                onMask={setMask}
                onStrength={(v) => patch({ strength: v })}
              />
            )
          }
          loraPanel={
            <LoraPanel
              loras={loras}
              status={currentStatus}
              modelLoaded={modelLoaded}
              defaultHubUrl={source.hubUrl ?? 'https://huggingface.co'}
              onAdd={addLora}
              onUpdate={updateLora}
              onRemove={removeLora}
            />
          }
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
          onUseAsInput={useAsInput}
          onDelete={(i) => void remove(i)}
        />
      </main>
    </div>
  );
}
