/*
 * App-shell service worker for KOALA web. Caches the page's own files (HTML, hashed JS/CSS, icons,
 * onnxruntime-web's .wasm/.mjs under ort/) so the page opens offline after the first visit.
 * It NEVER caches model weights: cross-origin requests (the hub) and the bundled demo hub pass through
 * untouched; the engine keeps weights in IndexedDB itself.
 */
const CACHE = 'koala-shell-v1';
const SHELL = ['./', './manifest.webmanifest', './icon.svg'];

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((c) => c.addAll(SHELL))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith('koala-shell-') && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

function scopePath(url) {
  const scope = new URL(self.registration.scope);
  return url.pathname.startsWith(scope.pathname) ? url.pathname.slice(scope.pathname.length) : null;
}

async function networkFirst(request, fallbackKey) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(fallbackKey ?? request, response.clone());
    return response;
  } catch (err) {
    const hit = await cache.match(fallbackKey ?? request);
    if (hit) return hit;
    throw err;
  }
}

async function cacheFirst(request) {
  const cache = await caches.open(CACHE);
  const hit = await cache.match(request);
  if (hit) return hit;
  const response = await fetch(request);
  if (response.ok) await cache.put(request, response.clone());
  return response;
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET' || request.headers.has('range')) return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return; // the hub: never cached here
  const path = scopePath(url);
  if (path === null || path.startsWith('demo-hub/') || path.startsWith('api/') || path === 'sw.js') return;
  if (request.mode === 'navigate') {
    event.respondWith(networkFirst(request, './'));
  } else if (path.startsWith('assets/') || path.startsWith('ort/')) {
    event.respondWith(cacheFirst(request));
  } else {
    event.respondWith(networkFirst(request));
  }
});
