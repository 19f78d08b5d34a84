// End-to-end: identity in Debian's chromium against the real `renkei demo`. A resident enrols
// with a certificate issued by the demo's development CA (the stand-in for the My Number
// card), registers a passkey through Chromium's virtual authenticator, signs out, signs in
// with the passkey and sees "my services". A service signs a resident in with the OpenID code
// flow: the consent page asks purpose by purpose, one yes and one no, the redirect brings a
// code to the service's redirect URI, the code redeems at /oauth/token, and the consent shows
// in "my services".
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DESKTOP, launch, newPage, operatorToken, registerService, renkei, startDemo, virtualAuthenticator,
} from './helpers.mjs';

let demo;
let browser;
let cards;

before(async () => {
  demo = await startDemo();
  browser = await launch();
  cards = mkdtempSync(join(tmpdir(), 'renkei-cards-'));
});

after(async () => {
  await browser?.close();
  await demo?.stop();
  if (cards) rmSync(cards, { recursive: true, force: true });
});

test('a resident enrols with a card, registers a passkey, signs out and signs in with it', async () => {
  const prefix = join(cards, 'hanako');
  renkei('dev-ca', 'issue', '--dir', join(demo.dataDir, 'dev-ca'), '--name', '山田 花子',
    '--algorithm', 'ecdsa', '--out', prefix);
  const page = await newPage(browser, DESKTOP);
  const { cdp, authenticatorId } = await virtualAuthenticator(page);

  await page.goto(`${demo.url}/portal/sign-in`);
  await page.click('a[href^="/portal/enrol"]');
  await page.waitForURL(/\/portal\/enrol/);
  const challenge = (await page.locator('#challenge').innerText()).trim();
  // The card-reading app's part, played by the development CA's tool.
  const signature = renkei('dev-ca', 'sign', '--key', `${prefix}-key.pem`, '--challenge', challenge);
  await page.setInputFiles('#certificate-file', `${prefix}.pem`);
  await page.waitForFunction(() => document.getElementById('certificate_chain').value.includes('BEGIN CERTIFICATE'));
  await page.fill('#signature', signature);
  await page.click('#enrol-form button[type=submit]');
  await page.waitForURL(/\/portal\/passkeys\?done=enrolled/);
  assert.match(await page.locator('.status-region').first().innerText(), /登録が完了し/);

  await page.fill('#passkey-name', 'テスト端末');
  await page.click('#passkey-register-button');
  await page.waitForURL(/\/portal\/passkeys\?done=added/);
  assert.equal(await page.locator('ul.passkeys > li').count(), 1);
  assert.match(await page.locator('ul.passkeys').innerText(), /テスト端末/);
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  assert.equal(credentials.length, 1);
  assert.ok(credentials[0].isResidentCredential, 'a discoverable credential');

  await page.click('.sign-out button');
  await page.waitForURL(/\/portal\/sign-in$/);
  await page.click('#passkey-sign-in-button');
  await page.waitForURL(`${demo.url}/portal`);
  await page.goto(`${demo.url}/portal/services`);
  assert.equal(await page.locator('h1').innerText(), '私のサービス');
  await page.goto(`${demo.url}/portal/passkeys`);
  assert.doesNotMatch(await page.locator('ul.passkeys').innerText(), /まだ使われていません/, 'last use recorded');
  assert.deepEqual(page.problems, [], 'no CSP violation or script error');
  await page.context().close();
});

test('a refused passkey says so in the page, in the page\'s language', async () => {
  const page = await newPage(browser, DESKTOP);
  const { cdp, authenticatorId } = await virtualAuthenticator(page);
  // The authenticator holds no credential for this site and cannot verify the user.
  await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: false });
  await page.goto(`${demo.url}/portal/sign-in?lang=en`);
  await page.click('#passkey-sign-in-button');
  const status = page.locator('#passkey-status .notice.error');
  await status.waitFor({ timeout: 15_000 });
  assert.match(await status.innerText(), /passkey was not accepted/);
  assert.equal(page.url(), `${demo.url}/portal/sign-in?lang=en`);
  await page.context().close();
});

const SERVICE = 'town-events';
const REDIRECT = `http://localhost:8090/${SERVICE}/callback`;

test('a service signs a resident in with the code flow: yes to one purpose, no to another', async () => {
  const registered = await registerService(demo.url, {
    id: SERVICE,
    name_ja: 'ひかり台イベント案内',
    name_en: 'Hikaridai Events',
    sector: 'culture',
    hpke_public_key: Buffer.alloc(32, 9).toString('base64url'),
    webhook_url: null,
    redirect_uris: [REDIRECT],
    purposes: [
      {
        id: 'event-news', title_ja: '近所のイベント案内', title_en: 'Local event news',
        description_ja: 'お住まいの地区のイベントをお知らせします。',
        description_en: 'News of events in your district.',
        categories: ['resident.address'], retention_days: 30, legal_basis: 'consent',
      },
      {
        id: 'health-tips', title_ja: '健康イベントのおすすめ', title_en: 'Health event tips',
        description_ja: '健診結果に合わせた健康イベントをおすすめします。',
        description_en: 'Health events matched to your check-up results.',
        categories: ['health.checkup'], retention_days: 30, legal_basis: 'consent',
      },
    ],
    privacy_impact: { purpose_limitation: 'イベント案内のみに使います' },
    controller: {
      contact: 'ひかり台イベント案内 個人情報窓口',
      address: {
        country: 'JP', postal_code: '999-0120', region: 'ひかり県', locality: 'ひかり台市',
        street_address: '公園通り5-6',
      },
      email: 'privacy@town-events.example',
      phone: '+81-3-0000-0120',
    },
  });
  const operator = await operatorToken(demo.url);
  const auth = { authorization: `Bearer ${operator}` };
  const review = await (await fetch(`${demo.url}/v1/operator/services/${SERVICE}/review`, { headers: auth })).json();
  const approved = await fetch(`${demo.url}/v1/operator/services/${SERVICE}/approve`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ acknowledged: review.map((r) => r.key) }),
  });
  assert.equal(approved.status, 204);

  const verifier = randomBytes(32).toString('base64url');
  const state = randomBytes(12).toString('base64url');
  const query = new URLSearchParams({
    response_type: 'code', client_id: SERVICE, redirect_uri: REDIRECT,
    scope: 'openid profile event-news health-tips', state, nonce: 'n-1',
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  });
  const page = await newPage(browser, DESKTOP);
  let landed;
  await page.route('http://localhost:8090/**', (route) => {
    landed = route.request().url();
    return route.fulfill({ status: 200, contentType: 'text/plain', body: 'the service' });
  });

  // Not signed in: to sign-in and back to the consent page.
  await page.goto(`${demo.url}/oauth/authorize?${query}`);
  await page.waitForURL(/\/portal\/sign-in\?next=/);
  await page.fill('#resident', demo.resident);
  await page.click('form[action="/portal/sign-in/demo"] button[type=submit]');
  await page.waitForURL(/\/oauth\/authorize\?/);
  assert.match(await page.locator('h1').innerText(), /ひかり台イベント案内/);
  assert.equal(await page.locator('fieldset.question').count(), 3, 'two purposes and the name, each asked');
  assert.match(await page.locator('#q-health-tips legend').innerText(), /健康イベントのおすすめ.*健康診断結果/);
  assert.equal(await page.locator('#q-health-tips .tag').count(), 1, 'special-care data marked');

  await page.check('input[name="answer-event-news"][value=yes]');
  await page.check('input[name="answer-health-tips"][value=no]');
  await page.check('input[name="share_profile"][value=no]');
  await page.click('button[value=continue]');
  await page.waitForURL(/localhost:8090/);
  const back = new URL(landed);
  assert.equal(`${back.origin}${back.pathname}`, REDIRECT);
  assert.equal(back.searchParams.get('state'), state);
  assert.equal(back.searchParams.get('iss'), demo.url);
  const code = back.searchParams.get('code');
  assert.ok(code);

  const basic = Buffer.from(`${SERVICE}:${registered.client_secret}`).toString('base64');
  const token = await fetch(`${demo.url}/oauth/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }),
  });
  const tokens = await token.json();
  assert.equal(token.status, 200, JSON.stringify(tokens));
  assert.equal(tokens.scope, 'openid event-news');
  assert.ok(tokens.id_token);

  await page.goto(`${demo.url}/portal/services`);
  assert.equal(await page.locator('#p-town-events-event-news .state.on').count(), 1);
  assert.equal(await page.locator('#p-town-events-health-tips .state.off').count(), 1);
  assert.deepEqual(page.problems, [], 'no CSP violation or script error');
  await page.context().close();
});
