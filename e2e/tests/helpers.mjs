// Shared set-up of the browser tests: start the real `renkei` binary in demo mode on free
// ports with its own data folder, launch Debian's chromium through playwright-core, take
// screenshots, run axe-core in the page, and act as a demo service from Node (fetch).
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));
export const SCREENSHOTS = join(here, '..', 'screenshots');
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export const PHONE = { width: 390, height: 844 };
export const DESKTOP = { width: 1280, height: 800 };

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

function portFree(port) {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Four consecutive free ports: the hub and the demo's three providers. */
async function freePorts() {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const base = 20000 + Math.floor(Math.random() * 30000);
    const free = await Promise.all([0, 1, 2, 3].map((i) => portFree(base + i)));
    if (free.every(Boolean)) return base;
  }
  throw new Error('no four free consecutive ports');
}

/** Each running demo's data folder, by URL: where the services' client secrets are kept. */
const dataDirs = new Map();

/** Starts `renkei demo`; resolves with its URL, the guide's resident id and a stop function. */
export async function startDemo() {
  const bin = process.env.RENKEI_BIN;
  if (!bin) throw new Error('set RENKEI_BIN to the renkei binary built by cargo');
  const dataDir = mkdtempSync(join(tmpdir(), 'renkei-e2e-'));
  const port = await freePorts();
  const child = spawn(bin, [
    'demo', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`,
    '--provider-port', String(port + 1), '--residents', '200',
  ], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: 'warn' } });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  // The demo's issuer is http://localhost:<port> (passkeys need a domain name).
  const url = `http://localhost:${port}`;
  const deadline = Date.now() + 60_000;
  let resident;
  while (Date.now() < deadline) {
    const m = out.match(/id ([0-9a-f-]{36})\)/);
    if (m) {
      resident = m[1];
      try {
        const health = await fetch(`${url}/healthz`);
        if (health.ok) break;
      } catch { /* not yet listening */ }
    }
    if (child.exitCode !== null) throw new Error(`renkei demo exited: ${out}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  if (!resident) throw new Error(`renkei demo did not start: ${out}`);
  dataDirs.set(url, dataDir);
  const stop = async () => {
    dataDirs.delete(url);
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
    rmSync(dataDir, { recursive: true, force: true });
  };
  return { url, resident, stop, dataDir, output: () => out };
}

export async function launch() {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS, headless: true });
}

/** A page that records CSP violations and script errors, which fail the tests. */
export async function newPage(browser, viewport = DESKTOP) {
  const context = await browser.newContext({ viewport, locale: 'ja-JP', timezoneId: 'Europe/London' });
  const page = await context.newPage();
  page.problems = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') page.problems.push(msg.text());
  });
  page.on('pageerror', (err) => page.problems.push(String(err)));
  return page;
}

export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** Runs axe-core in the page (evaluated over CDP, so the page's CSP stays in force). */
export async function axe(page) {
  await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] } });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  });
  return result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/** The demo service's bearer token (OAuth 2.0 client credentials), with the client secret
 *  the hub showed the demo operator at registration. */
export async function serviceToken(url, service) {
  const secret = readFileSync(join(dataDirs.get(url), 'service-secrets', service), 'utf8').trim();
  const basic = Buffer.from(`${service}:${secret}`).toString('base64');
  const r = await fetch(`${url}/oauth/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials',
  });
  if (!r.ok) throw new Error(`token: ${r.status}`);
  return (await r.json()).access_token;
}

export const DEMO_OPERATOR = '00000000-0000-4000-8000-00000000c0de';

/** An operator token for the demo operator (demo sign-in, then the hub's operator session). */
export async function operatorToken(url) {
  const signIn = await fetch(`${url}/demo/sign-in`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ resident: DEMO_OPERATOR }),
  });
  const identity = (await signIn.json()).access_token;
  const r = await fetch(`${url}/v1/operator/session`, { method: 'POST', headers: { authorization: `Bearer ${identity}` } });
  if (!r.ok) throw new Error(`operator session: ${r.status}`);
  return (await r.json()).access_token;
}

/** Registers a service as pending review, as an operator would through the API. */
export async function registerService(url, registration) {
  const token = await operatorToken(url);
  const r = await fetch(`${url}/v1/operator/services`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(registration),
  });
  if (r.status !== 201) throw new Error(`register: ${r.status} ${await r.text()}`);
  return r.json();
}

/** The service asks for a resident's data; resolves with the HTTP status and body. */
export async function dataRequest(url, token, subject, purpose, categories) {
  const r = await fetch(`${url}/v1/data-requests`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ subject, purpose, categories }),
  });
  return { status: r.status, body: await r.json() };
}

/** Runs the `renkei` binary (e.g. `dev-ca issue`) and resolves with what it printed. */
export function renkei(...args) {
  return execFileSync(process.env.RENKEI_BIN, args, { encoding: 'utf8' }).trim();
}

/** A virtual platform authenticator (Chromium DevTools' WebAuthn domain) for this page. */
export async function virtualAuthenticator(page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2', transport: 'internal', hasResidentKey: true,
      hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true,
    },
  });
  return { cdp, authenticatorId };
}
