// Fieldbook service worker: precaches the app shell at install (the file list is written into
// this file at build time, see vite.config.js) and serves it cache-first, so the app opens
// with no network. The API (/v1/*) is never cached: records live in IndexedDB, not here.
export {};
declare const self: ServiceWorkerGlobalScope;

const MANIFEST: { version: string; files: string[] } = JSON.parse("__FIELDBOOK_PRECACHE__");
const PREFIX = "fieldbook-shell-";
const CACHE = PREFIX + MANIFEST.version;
const scoped = (path: string) => new URL(path, self.registration.scope).href;
const SHELL = scoped("./");

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      await cache.addAll(MANIFEST.files.map((file) => new Request(scoped(file), { cache: "reload" })));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith(PREFIX) && name !== CACHE) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/v1/")) return; // network only
  if (request.mode === "navigate") {
    event.respondWith(fromCache(SHELL, request));
  } else {
    event.respondWith(fromCache(request, request));
  }
});

async function fromCache(key: RequestInfo, request: Request): Promise<Response> {
  const cache = await caches.open(CACHE);
  const hit = await cache.match(key, { ignoreSearch: true });
  return hit ?? fetch(request);
}
