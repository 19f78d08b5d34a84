// End-to-end: identity in Debian's chromium against the real `renkei demo`. A resident enrols
// with a certificate issued by the demo's development CA (the stand-in for the My Number
// card), registers a passkey through Chromium's virtual authenticator, signs out, signs in
// with the passkey and sees "my services". A service signs a resident in with the OpenID code
// flow: the consent page asks purpose by purpose, one yes and one no, the redirect brings a
// code to the service's redirect URI, and the consent shows in "my services". The service's
// side is a third-party relying-party library, openid-client, once authenticating with
// client_secret_basic and once with client_secret_post: it redeems the code with PKCE, and
// the ID token (checked with jose against the hub's JWK Set), userinfo, introspection and
// revocation are read as that library reads them.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, jwtVerify } from 'jose';
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
/** The service's client secret, once the first code-flow test registered it. */
let secret;

/** The service as an openid-client relying party, authenticating as `auth` says. */
async function relyingParty(auth) {
  return oidc.discovery(new URL(demo.url), SERVICE, { redirect_uris: [REDIRECT] }, auth, {
    execute: [oidc.allowInsecureRequests],
  });
}

/**
 * The relying party sends the browser to the hub's consent page with code + PKCE; `answer`
 * signs in (if asked) and answers; the browser lands on the redirect URI, which the service
 * (a route of the page) answers. Resolves with the page, that URL and what the relying
 * party must check.
 */
async function consentInBrowser(config, scope, answer) {
  const checks = {
    pkceCodeVerifier: oidc.randomPKCECodeVerifier(),
    expectedState: oidc.randomState(),
    expectedNonce: oidc.randomNonce(),
    idTokenExpected: true,
  };
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT, scope, state: checks.expectedState, nonce: checks.expectedNonce,
    code_challenge: await oidc.calculatePKCECodeChallenge(checks.pkceCodeVerifier),
    code_challenge_method: 'S256',
  });
  const page = await newPage(browser, DESKTOP);
  let landed;
  await page.route('http://localhost:8090/**', (route) => {
    landed = route.request().url();
    return route.fulfill({ status: 200, contentType: 'text/plain', body: 'the service' });
  });
  await page.goto(url.href);
  await answer(page);
  await page.click('button[value=continue]');
  await page.waitForURL(/localhost:8090/);
  return { page, landed: new URL(landed), checks };
}

/**
 * What a service does with the code, all through openid-client authenticating with `auth`: redeem it (state, `iss`,
 * PKCE, nonce checked by the library), verify the ID token's signature against the hub's
 * JWK Set with jose, read userinfo, introspect the access token, revoke it, and see it
 * inactive.
 */
async function redeemAndUse(config, auth, landed, checks, scope) {
  const tokens = await oidc.authorizationCodeGrant(config, landed, checks);
  assert.equal(tokens.scope, scope);
  assert.equal(tokens.token_type.toLowerCase(), 'bearer');
  const claims = tokens.claims();
  assert.equal(claims.nonce, checks.expectedNonce);
  const jwks = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri));
  const { payload, protectedHeader } = await jwtVerify(tokens.id_token, jwks, {
    issuer: demo.url, audience: SERVICE, algorithms: ['RS256'],
  });
  assert.equal(protectedHeader.alg, 'RS256');
  assert.equal(payload.sub, claims.sub);
  assert.equal(payload.name, undefined, 'the name was not shared');

  const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
  assert.deepEqual(userinfo, { sub: claims.sub });
  const active = await oidc.tokenIntrospection(config, tokens.access_token);
  assert.equal(active.active, true);
  assert.equal(active.client_id, SERVICE);
  assert.equal(active.sub, claims.sub);
  assert.equal(active.scope, scope);
  await oidc.tokenRevocation(config, tokens.access_token);
  assert.deepEqual(await oidc.tokenIntrospection(config, tokens.access_token), { active: false });
  // The library reads the hub's refusal as the OAuth error it is (RFC 6750 at userinfo).
  await assert.rejects(oidc.fetchUserInfo(config, tokens.access_token, claims.sub), (e) => {
    assert.equal(e.response?.status, 401);
    assert.match(e.response.headers.get('www-authenticate'), /^Bearer .*error="invalid_token"/);
    return true;
  });
  // And a wrong secret as `invalid_client` (RFC 6749 §5.2): over HTTP Basic a 401 whose
  // Basic challenge the library reports, in the form a 400 it reports as the OAuth error.
  const wrong = await relyingParty(auth('wrong'));
  let refusal;
  await assert.rejects(oidc.tokenIntrospection(wrong, tokens.access_token), (e) => {
    refusal = e;
    return true;
  });
  if (auth === oidc.ClientSecretBasic) {
    assert.equal(refusal.status, 401, String(refusal));
    assert.equal(refusal.cause?.[0]?.scheme, 'basic', String(refusal));
    assert.equal((await refusal.response.json()).error, 'invalid_client');
  } else {
    assert.equal(refusal.status, 400, String(refusal));
    assert.equal(refusal.error, 'invalid_client', String(refusal));
  }
  return claims;
}

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

  secret = registered.client_secret;

  const config = await relyingParty(oidc.ClientSecretBasic(secret));
  const { page, landed, checks } = await consentInBrowser(
    config, 'openid profile event-news health-tips',
    async (p) => {
      await p.waitForURL(/\/portal\/sign-in\?next=/);
      await p.fill('#resident', demo.resident);
      await p.click('form[action="/portal/sign-in/demo"] button[type=submit]');
      await p.waitForURL(/\/oauth\/authorize\?/);
      assert.match(await p.locator('h1').innerText(), /ひかり台イベント案内/);
      assert.equal(await p.locator('fieldset.question').count(), 3, 'two purposes and the name, each asked');
      assert.match(await p.locator('#q-health-tips legend').innerText(), /健康イベントのおすすめ.*健康診断結果/);
      assert.equal(await p.locator('#q-health-tips .tag').count(), 1, 'special-care data marked');
      await p.check('input[name="answer-event-news"][value=yes]');
      await p.check('input[name="answer-health-tips"][value=no]');
      await p.check('input[name="share_profile"][value=no]');
    },
  );
  assert.equal(`${landed.origin}${landed.pathname}`, REDIRECT);
  assert.equal(landed.searchParams.get('iss'), demo.url);
  await redeemAndUse(config, oidc.ClientSecretBasic, landed, checks, 'openid event-news');

  await page.goto(`${demo.url}/portal/services`);
  assert.equal(await page.locator('#p-town-events-event-news .state.on').count(), 1);
  assert.equal(await page.locator('#p-town-events-health-tips .state.off').count(), 1);
  assert.deepEqual(page.problems, [], 'no CSP violation or script error');
  await page.context().close();
});

test('a service signs the resident in again, authenticating with client_secret_post', async () => {
  assert.ok(secret, 'the service was registered by the code-flow test above');
  const config = await relyingParty(oidc.ClientSecretPost(secret));
  const { page, landed, checks } = await consentInBrowser(config, 'openid event-news', async (p) => {
    await p.waitForURL(/\/portal\/sign-in\?next=/);
    await p.fill('#resident', demo.resident);
    await p.click('form[action="/portal/sign-in/demo"] button[type=submit]');
    await p.waitForURL(/\/oauth\/authorize\?/);
    assert.equal(await p.locator('fieldset.question').count(), 1);
    await p.check('input[name="answer-event-news"][value=yes]');
  });
  await redeemAndUse(config, oidc.ClientSecretPost, landed, checks, 'openid event-news');
  assert.deepEqual(page.problems, [], 'no CSP violation or script error');
  await page.context().close();
});
