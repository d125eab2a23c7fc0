/**
 * A local stand-in for the Hugging Face hub: serves diffusers folders as model repos with the hub's
 * URL scheme, API shapes and headers, plus fault injection and request accounting for tests.
 *
 * Repos: `<root>/<org>/<name>/` (or `<root>/<name>/` for any org) is revision `main`;
 * `<root>/<org>/<name>@<rev>/` is revision `<rev>`. A revision's commit is a sha1 over its files'
 * paths and sha256, so editing a file changes the commit.
 *
 * Routes: GET|HEAD /{repo}/resolve/{rev}/{path}, /api/models/{repo}, /api/models/{repo}/revision/{rev},
 * /api/models/{repo}/tree/{rev}[/{dir}]?recursive=true; LFS files redirect (302) to /__lfs/{sha256}/{path}
 * like the hub's CDN redirect. Control: POST /__faults (JSON rules, `?append=1` to add), DELETE /__faults,
 * GET /__stats, POST /__reset.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { scanRepo, type MockFile, type MockRepoState } from './repo-scan';

export type FaultKind = 'drop' | 'flip' | 'html' | 'json' | 'status' | 'slow' | 'short' | 'ignore-range';

export interface FaultRule {
  kind: FaultKind;
  /** Applies to file paths containing this string (default: every file). A value starting with `/api/`
   *  applies `status`/`html` faults to API requests whose URL path starts with it. */
  path?: string;
  /** drop: close the connection after this many body bytes of the response (default half the file). */
  afterBytes?: number;
  /** flip: absolute byte offset in the file to XOR with 0xff (default the middle). */
  offset?: number;
  /** status: the HTTP status to answer (404, 500, 429, 503...). */
  status?: number;
  /** slow: bytes per second. */
  bytesPerSec?: number;
  /** short: bytes to leave off the end (default 1000). */
  missing?: number;
  /** How many matching file requests it affects (default 1; 0 = every one). */
  times?: number;
}

export interface RequestLog {
  method: string;
  url: string;
  /** Repo file path for file requests. */
  path?: string;
  status: number;
  range?: string;
  ifRange?: string;
  bytes: number;
  fault?: FaultKind;
}

export interface MockHubOptions {
  root: string;
  port?: number;
  host?: string;
  /** Redirect LFS files to /__lfs/ like the hub's CDN (default true). */
  redirectLfs?: boolean;
  /** Paginate tree listings with Link headers (default: no pagination). */
  treePageSize?: number;
}

export interface MockHub {
  url: string;
  port: number;
  server: Server;
  close(): Promise<void>;
  setFaults(rules: FaultRule[], append?: boolean): void;
  reset(): void;
  requests: RequestLog[];
  /** Body bytes served per file path. */
  bytesServed(pathPart?: string): number;
  /** File requests (resolve + lfs) per path substring. */
  fileRequests(pathPart?: string): RequestLog[];
  /** Scan a repo revision (for tests: the commit and file list the hub will report). */
  repoState(repo: string, revision?: string): Promise<MockRepoState>;
}

const CORS_EXPOSE = 'ETag, X-Repo-Commit, X-Linked-Size, X-Linked-Etag, Content-Range, Accept-Ranges, Content-Length, Content-Type, Link, X-Error-Code';

function setCors(res: ServerResponse): void {
  res.setHeader('Access-Control-Allow-Origin', '*');
  res.setHeader('Access-Control-Expose-Headers', CORS_EXPOSE);
}

function sendJson(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): number {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...extra });
  res.end(text);
  return Buffer.byteLength(text);
}

function contentType(path: string): string {
  if (path.endsWith('.json')) return 'application/json';
  if (path.endsWith('.txt') || path.endsWith('.md')) return 'text/plain; charset=utf-8';
  return 'application/octet-stream';
}

const HEX40 = /^[0-9a-f]{40}$/;

export async function startMockHub(options: MockHubOptions): Promise<MockHub> {
  const { root } = options;
  const redirectLfs = options.redirectLfs ?? true;
  let faults: Array<FaultRule & { used: number }> = [];
  const requests: RequestLog[] = [];
  const lfsIndex = new Map<string, MockFile>();

  async function repoDirs(repo: string): Promise<Map<string, string>> {
    const [org, name] = repo.split('/');
    const out = new Map<string, string>();
    for (const base of [join(root, org, name), join(root, name)]) {
      const st = await stat(base).catch(() => undefined);
      if (!st?.isDirectory()) continue;
      out.set('main', base);
      const parent = join(base, '..');
      const { readdir } = await import('node:fs/promises');
      for (const e of await readdir(parent, { withFileTypes: true })) {
        if (e.isDirectory() && e.name.startsWith(`${name}@`)) out.set(e.name.slice(name.length + 1), join(parent, e.name));
      }
      break;
    }
    return out;
  }

  async function revisionState(repo: string, revision: string): Promise<MockRepoState | undefined> {
    const dirs = await repoDirs(repo);
    if (dirs.size === 0) return undefined;
    const dir = dirs.get(revision);
    if (dir) return index(await scanRepo(dir));
    if (HEX40.test(revision)) {
      for (const d of dirs.values()) {
        const s = await scanRepo(d);
        if (s.commit === revision) return index(s);
      }
    }
    return undefined;
  }

  function index(s: MockRepoState): MockRepoState {
    for (const f of s.files) if (f.lfs) lfsIndex.set(f.sha256, f);
    return s;
  }

  function takeFault(path: string): FaultRule | undefined {
    for (const f of faults) {
      if (f.path && (f.path.startsWith('/api/') || !path.includes(f.path))) continue;
      if (f.times !== 0 && f.used >= (f.times ?? 1)) continue;
      f.used++;
      return f;
    }
    return undefined;
  }

  function serveFile(req: IncomingMessage, res: ServerResponse, file: MockFile, commit: string | undefined, log: RequestLog): Promise<void> {
    const etag = `"${file.lfs ? file.sha256 : file.oid}"`;
    const headers: Record<string, string | number> = {
      'Accept-Ranges': 'bytes',
      ETag: etag,
      'Content-Type': contentType(file.path),
      'Cache-Control': 'public, max-age=31536000, immutable',
    };
    if (commit) headers['X-Repo-Commit'] = commit;
    if (file.lfs) {
      headers['X-Linked-Size'] = file.size;
      headers['X-Linked-Etag'] = `"${file.sha256}"`;
    }
    const fault = takeFault(file.path);
    if (fault) log.fault = fault.kind;
    if (fault?.kind === 'status') {
      log.status = fault.status ?? 500;
      log.bytes = sendJson(res, log.status, { error: `mock fault: HTTP ${log.status}` }, { 'X-Error-Code': 'MockFault' });
      return Promise.resolve();
    }
    if (fault?.kind === 'html' || fault?.kind === 'json') {
      const body =
        fault.kind === 'html'
          ? '<!DOCTYPE html><html><head><title>Sign in</title></head><body>Captive portal: please log in</body></html>'
          : JSON.stringify({ error: 'Access to model is restricted' });
      res.writeHead(200, { 'Content-Type': fault.kind === 'html' ? 'text/html; charset=utf-8' : 'application/json', 'Content-Length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
      log.status = 200;
      log.bytes = req.method === 'HEAD' ? 0 : Buffer.byteLength(body);
      return Promise.resolve();
    }
    let start = 0;
    let end = file.size - 1;
    let status = 200;
    const range = req.headers.range;
    const ifRange = req.headers['if-range'];
    const rangeOk = range && (!ifRange || ifRange === etag) && fault?.kind !== 'ignore-range';
    if (rangeOk) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range);
      if (!m || (m[1] === '' && m[2] === '')) {
        res.writeHead(416, { 'Content-Range': `bytes */${file.size}` });
        res.end();
        log.status = 416;
        return Promise.resolve();
      }
      if (m[1] === '') start = Math.max(0, file.size - Number(m[2]));
      else {
        start = Number(m[1]);
        if (m[2] !== '') end = Math.min(end, Number(m[2]));
      }
      if (start >= file.size || start > end) {
        res.writeHead(416, { 'Content-Range': `bytes */${file.size}` });
        res.end();
        log.status = 416;
        return Promise.resolve();
      }
      status = 206;
      headers['Content-Range'] = `bytes ${start}-${end}/${file.size}`;
    }
    let length = end - start + 1;
    if (fault?.kind === 'short' && status === 200) {
      length = Math.max(0, length - (fault.missing ?? 1000));
      end = start + length - 1;
    }
    headers['Content-Length'] = length;
    res.writeHead(status, headers);
    log.status = status;
    if (req.method === 'HEAD' || length === 0) {
      res.end();
      return Promise.resolve();
    }
    const dropAfter = fault?.kind === 'drop' ? (fault.afterBytes ?? Math.floor(file.size / 2)) : Infinity;
    const flipAt = fault?.kind === 'flip' ? (fault.offset ?? Math.floor(file.size / 2)) : -1;
    const bps = fault?.kind === 'slow' ? (fault.bytesPerSec ?? 64 * 1024) : 0;
    return new Promise<void>((resolve) => {
      const stream = createReadStream(file.abs, { start, end, highWaterMark: bps ? Math.max(1024, Math.floor(bps / 20)) : 256 * 1024 });
      let pos = start;
      let sent = 0;
      const finish = () => {
        log.bytes = sent;
        resolve();
      };
      res.on('close', () => {
        stream.destroy();
        finish();
      });
      stream.on('data', (buf) => {
        let chunk = buf as Buffer;
        if (flipAt >= pos && flipAt < pos + chunk.length) {
          chunk = Buffer.from(chunk);
          chunk[flipAt - pos] ^= 0xff;
        }
        if (sent + chunk.length >= dropAfter) {
          const part = chunk.subarray(0, dropAfter - sent);
          stream.destroy();
          // Flush what was promised, then close the socket cleanly mid-body (the client sees a truncated body).
          res.write(part, () => {
            sent += part.length;
            log.bytes = sent;
            res.socket?.end();
          });
          return;
        }
        pos += chunk.length;
        sent += chunk.length;
        const ok = res.write(chunk);
        if (bps) {
          stream.pause();
          setTimeout(() => stream.resume(), (chunk.length / bps) * 1000);
        } else if (!ok) {
          stream.pause();
          res.once('drain', () => stream.resume());
        }
      });
      stream.on('end', () => res.end());
      stream.on('error', () => res.destroy());
    });
  }

  function treeEntries(state: MockRepoState, sub: string, recursive: boolean) {
    const prefix = sub ? `${sub.replace(/\/+$/, '')}/` : '';
    const out: unknown[] = [];
    const dirs = new Set<string>();
    for (const f of state.files) {
      if (!f.path.startsWith(prefix)) continue;
      const rest = f.path.slice(prefix.length);
      const parts = rest.split('/');
      for (let i = 1; i < parts.length; i++) {
        const d = prefix + parts.slice(0, i).join('/');
        if ((recursive || i === 1) && !dirs.has(d)) {
          dirs.add(d);
          out.push({ type: 'directory', oid: '0'.repeat(40), size: 0, path: d });
        }
      }
      if (!recursive && parts.length > 1) continue;
      out.push({
        type: 'file',
        oid: f.oid,
        size: f.size,
        path: f.path,
        ...(f.lfs ? { lfs: { oid: f.sha256, size: f.size, pointerSize: f.pointerSize } } : {}),
      });
    }
    return out;
  }

  function modelInfo(repo: string, state: MockRepoState) {
    return {
      _id: state.commit.slice(0, 24),
      id: repo,
      modelId: repo,
      sha: state.commit,
      private: false,
      gated: false,
      disabled: false,
      library_name: 'diffusers',
      pipeline_tag: 'text-to-image',
      tags: ['diffusers', 'mock-hub'],
      lastModified: new Date(Math.max(0, ...state.files.map((f) => f.mtimeMs))).toISOString(),
      siblings: state.files.map((f) => ({ rfilename: f.path })),
    };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    setCors(res);
    const url = new URL(req.url ?? '/', 'http://mock');
    const log: RequestLog = { method: req.method ?? 'GET', url: url.pathname + url.search, status: 0, bytes: 0, range: req.headers.range, ifRange: req.headers['if-range'] as string | undefined };
    const seg = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    try {
      if (req.method === 'OPTIONS') {
        res.writeHead(204, {
          'Access-Control-Allow-Methods': 'GET, HEAD, OPTIONS',
          'Access-Control-Allow-Headers': 'Range, If-Range, If-None-Match, Authorization, Content-Type, Cache-Control',
          'Access-Control-Max-Age': '86400',
        });
        res.end();
        log.status = 204;
        return;
      }
      if (seg[0] === '__faults') {
        if (req.method === 'DELETE') faults = [];
        else if (req.method === 'POST') {
          let body = '';
          for await (const c of req) body += c;
          const parsed = JSON.parse(body || '[]') as FaultRule[] | { rules: FaultRule[] };
          api.setFaults(Array.isArray(parsed) ? parsed : parsed.rules, url.searchParams.has('append'));
        }
        log.status = 200;
        sendJson(res, 200, { faults });
        return;
      }
      if (seg[0] === '__stats') {
        log.status = 200;
        const byPath: Record<string, { requests: number; bytes: number }> = {};
        for (const r of requests) {
          if (!r.path) continue;
          const e = (byPath[r.path] ??= { requests: 0, bytes: 0 });
          e.requests++;
          e.bytes += r.bytes;
        }
        sendJson(res, 200, { requests, byPath });
        return;
      }
      if (seg[0] === '__reset') {
        api.reset();
        log.status = 200;
        sendJson(res, 200, { ok: true });
        return;
      }
      if (seg[0] === '__lfs' && seg.length >= 3) {
        const file = lfsIndex.get(seg[1]);
        if (!file) {
          log.status = 404;
          sendJson(res, 404, { error: 'LFS object not found' });
          return;
        }
        log.path = seg.slice(2).join('/');
        await serveFile(req, res, { ...file, path: log.path }, undefined, log);
        return;
      }
      if (seg[0] === 'api' && seg[1] === 'models' && seg.length >= 4) {
        const apiFault = faults.find((f) => f.path?.startsWith('/api/') && url.pathname.startsWith(f.path) && (f.times === 0 || f.used < (f.times ?? 1)));
        if (apiFault && (apiFault.kind === 'status' || apiFault.kind === 'html')) {
          apiFault.used++;
          log.fault = apiFault.kind;
          if (apiFault.kind === 'html') {
            const body = '<!DOCTYPE html><html><body>Bad gateway</body></html>';
            res.writeHead(200, { 'Content-Type': 'text/html', 'Content-Length': Buffer.byteLength(body) });
            res.end(body);
            log.status = 200;
          } else {
            log.status = apiFault.status ?? 500;
            sendJson(res, log.status, { error: `mock fault: HTTP ${log.status}` });
          }
          return;
        }
        const repo = `${seg[2]}/${seg[3]}`;
        const op = seg[4];
        const rev = op === undefined ? 'main' : seg[5];
        if (op !== undefined && op !== 'revision' && op !== 'tree') {
          log.status = 404;
          sendJson(res, 404, { error: `unknown endpoint ${op}` });
          return;
        }
        const state = rev ? await revisionState(repo, rev) : undefined;
        if (!state) {
          log.status = 404;
          const exists = (await repoDirs(repo)).size > 0;
          sendJson(res, 404, { error: exists ? `Invalid rev id: ${rev}` : 'Repository not found' }, { 'X-Error-Code': exists ? 'RevisionNotFound' : 'RepoNotFound' });
          return;
        }
        if (op === 'tree') {
          const entries = treeEntries(state, seg.slice(6).join('/'), ['true', '1'].includes(url.searchParams.get('recursive') ?? ''));
          const size = options.treePageSize;
          const cursor = Number(url.searchParams.get('cursor') ?? 0);
          const extra: Record<string, string> = {};
          let page = entries;
          if (size) {
            page = entries.slice(cursor, cursor + size);
            if (cursor + size < entries.length) {
              const next = new URL(url.toString());
              next.searchParams.set('cursor', String(cursor + size));
              extra.Link = `<${hubUrl}${next.pathname}${next.search}>; rel="next"`;
            }
          }
          log.status = 200;
          log.bytes = sendJson(res, 200, page, extra);
          return;
        }
        log.status = 200;
        log.bytes = sendJson(res, 200, modelInfo(repo, state));
        return;
      }
      if (seg.length >= 5 && seg[2] === 'resolve') {
        const repo = `${seg[0]}/${seg[1]}`;
        const path = seg.slice(4).join('/');
        log.path = path;
        const state = await revisionState(repo, seg[3]);
        const file = state?.byPath.get(path);
        if (!state || !file) {
          log.status = 404;
          sendJson(res, 404, { error: state ? `Entry not found: ${path}` : 'Revision or repository not found' }, { 'X-Error-Code': state ? 'EntryNotFound' : 'RevisionNotFound', ...(state ? { 'X-Repo-Commit': state.commit } : {}) });
          return;
        }
        if (file.lfs && redirectLfs) {
          const loc = `/__lfs/${file.sha256}/${path.split('/').map(encodeURIComponent).join('/')}`;
          res.writeHead(302, {
            Location: loc,
            'X-Repo-Commit': state.commit,
            'X-Linked-Size': file.size,
            'X-Linked-Etag': `"${file.sha256}"`,
            ETag: `"${file.oid}"`,
            'Content-Length': 0,
          });
          res.end();
          log.status = 302;
          log.path = undefined; // counted on the /__lfs request
          return;
        }
        await serveFile(req, res, file, state.commit, log);
        return;
      }
      log.status = 404;
      sendJson(res, 404, { error: `no route for ${url.pathname}` });
    } catch (err) {
      log.status = 500;
      if (!res.headersSent) sendJson(res, 500, { error: String(err) });
      else res.destroy();
    } finally {
      requests.push(log);
    }
  }

  const server = createServer((req, res) => {
    void handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve));
  const addr = server.address() as AddressInfo;
  const hubUrl = `http://${options.host ?? '127.0.0.1'}:${addr.port}`;
  const api: MockHub = {
    url: hubUrl,
    port: addr.port,
    server,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
    setFaults(rules, append = false) {
      const fresh = rules.map((r) => ({ ...r, used: 0 }));
      faults = append ? [...faults, ...fresh] : fresh;
    },
    reset() {
      faults = [];
      requests.length = 0;
    },
    bytesServed(part) {
      return requests.filter((r) => r.path && (!part || r.path.includes(part))).reduce((s, r) => s + r.bytes, 0);
    },
    fileRequests(part) {
      return requests.filter((r) => r.path && (!part || r.path.includes(part)));
    },
    async repoState(repo, revision = 'main') {
      const s = await revisionState(repo, revision);
      if (!s) throw new Error(`mock hub: no repo ${repo}@${revision} under ${root}`);
      return s;
    },
  };
  return api;
}
