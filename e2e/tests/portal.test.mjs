// End-to-end: the resident portal and the operator console in Debian's chromium against
// the real `renkei demo`. A resident turns a purpose off, the service's next request is
// denied, the denial shows in "who used my data" verified against the signed log; the
// language switch keeps the page; every main page is screenshot in both languages at phone
// and desktop widths and checked with axe-core.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEMO_OPERATOR, DESKTOP, PHONE, axe, dataRequest, launch, newPage, registerService, screenshot,
  serviceToken, startDemo,
} from './helpers.mjs';

let demo;
let browser;

before(async () => {
  demo = await startDemo();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await demo?.stop();
});

async function signInResident(page) {
  await page.goto(`${demo.url}/portal/sign-in`);
  await page.fill('#resident', demo.resident);
  await page.click('form[action="/portal/sign-in/demo"] button[type=submit]');
  await page.waitForURL(`${demo.url}/portal`);
}

async function signInOperator(page) {
  await page.goto(`${demo.url}/console/sign-in`);
  await page.fill('#identity', DEMO_OPERATOR);
  await page.click('form[action="/console/sign-in/demo"] button[type=submit]');
  await page.waitForURL(`${demo.url}/console`);
}

async function waitVerified(page) {
  await page.waitForSelector('#log[data-verified]', { timeout: 15_000 });
}

test('a purpose turned off in the portal denies the next data request, and the denial shows verified', async () => {
  // The resident said yes through the API earlier; the service knows them by this subject.
  const signIn = await fetch(`${demo.url}/demo/sign-in`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ resident: demo.resident }),
  });
  const residentToken = (await signIn.json()).access_token;
  const granted = await (await fetch(`${demo.url}/v1/me/consents`, {
    method: 'POST',
    headers: { authorization: `Bearer ${residentToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ service: 'health-advice', purpose: 'health-advice' }),
  })).json();
  const service = await serviceToken(demo.url, 'health-advice');
  const categories = ['health.checkup', 'payment.history'];
  const first = await dataRequest(demo.url, service, granted.subject, 'health-advice', categories);
  assert.equal(first.status, 200, JSON.stringify(first.body));

  const page = await newPage(browser, DESKTOP);
  await signInResident(page);
  await page.goto(`${demo.url}/portal/services`);
  const purpose = page.locator('#p-health-advice-health-advice');
  await assert.doesNotReject(purpose.locator('.state.on').waitFor());
  await purpose.locator('button[value=stop]').click();
  await page.waitForURL(/done=stopped/);
  assert.equal(await purpose.locator('.state.off').count(), 1, 'the purpose shows as off');
  assert.match(await page.locator('.status-region').innerText(), /止めました/);

  const second = await dataRequest(demo.url, service, granted.subject, 'health-advice', categories);
  assert.equal(second.status, 403);
  assert.equal(second.body.type, '/problems/consent-revoked');

  await page.goto(`${demo.url}/portal/history`);
  await waitVerified(page);
  const denied = page.locator('li.entry.denied').first();
  assert.match(await denied.innerText(), /ひかり台けんこうナビ/);
  assert.match(await denied.innerText(), /同意を撤回済み/);
  assert.equal(await denied.locator('.verify').getAttribute('data-state'), 'verified');
  assert.equal(await denied.locator('.verify').innerText(), '検証済み');
  assert.equal(await page.locator('.verify[data-state=failed]').count(), 0);
  assert.equal(await page.locator('#log').getAttribute('data-verified'), 'all');

  // The switch keeps the page and changes every word.
  await page.click('.lang-switch a[lang=en]');
  await page.waitForURL(/\/portal\/history\?lang=en/);
  assert.equal(await page.getAttribute('html', 'lang'), 'en');
  assert.equal(await page.locator('h1').innerText(), 'Who used my data');
  await waitVerified(page);
  assert.match(await page.locator('li.entry.denied').first().innerText(), /consent withdrawn/);
  assert.equal(await page.locator('li.entry.denied .verify').first().innerText(), 'Verified');
  // The choice sticks (cookie) on the next page.
  await page.goto(`${demo.url}/portal/services`);
  assert.equal(await page.locator('h1').innerText(), 'My services');
  assert.deepEqual(page.problems, [], 'no CSP violation or script error');
  await page.context().close();
});

test('a page without JavaScript shows history entries as not checked', async () => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(`${demo.url}/portal/sign-in`);
  await page.fill('#resident', demo.resident);
  await page.click('form[action="/portal/sign-in/demo"] button[type=submit]');
  await page.waitForURL(`${demo.url}/portal`);
  await page.goto(`${demo.url}/portal/history`);
  const states = await page.locator('.verify').evaluateAll((els) => els.map((e) => e.getAttribute('data-state')));
  assert.ok(states.length > 0);
  assert.ok(states.every((s) => s === 'unchecked'));
  await context.close();
});

test('an operator approves a service whose checklist flagged risks only after confirming each', async () => {
  await registerService(demo.url, {
    id: 'wellness-coupons',
    name_ja: 'ひかり台ウェルネスクーポン',
    name_en: 'Hikaridai Wellness Coupons',
    sector: 'retail',
    hpke_public_key: Buffer.alloc(32, 7).toString('base64url'),
    webhook_url: null,
    redirect_uris: ['http://localhost:8090/wellness-coupons/callback'],
    purposes: [{
      id: 'coupons',
      title_ja: '健康クーポンの配信',
      title_en: 'Health coupons',
      description_ja: '健康診断結果に合わせたクーポンをお届けします。',
      description_en: 'Coupons matched to your health check results.',
      categories: ['health.checkup'],
      retention_days: 730,
      legal_basis: 'consent',
    }],
    privacy_impact: { purpose_limitation: 'クーポン配信のみに使います' },
    controller: {
      contact: 'ウェルネスクーポン事務局',
      address: {
        country: 'JP', postal_code: '999-0130', region: 'ひかり県', locality: 'ひかり台市',
        street_address: '商店街1-2',
      },
      email: 'privacy@wellness-coupons.example',
      phone: '+81-3-0000-0130',
    },
  });
  const page = await newPage(browser, DESKTOP);
  await signInOperator(page);
  assert.match(await page.locator('#pending-h + ul').innerText(), /ひかり台ウェルネスクーポン/);
  await page.goto(`${demo.url}/console/services/wellness-coupons`);
  const flags = await page.locator('input[name=ack]').evaluateAll((els) => els.map((e) => e.value));
  assert.deepEqual(flags, ['special-care:coupons', 'long-retention:coupons']);
  // Whom residents contact, as every receipt will say: shown for the operator to check.
  const contact = await page.locator('dl.controller').innerText();
  assert.match(contact, /ウェルネスクーポン事務局/);
  assert.match(contact, /〒999-0130 ひかり県ひかり台市商店街1-2 \(JP\)/);
  assert.match(contact, /privacy@wellness-coupons\.example/);
  await screenshot(page, 'console-review-pending-ja-desktop');

  // Only one of two ticked: refused, nothing approved.
  await page.check('input[value="special-care:coupons"]');
  const refused = page.waitForResponse((r) => r.url().endsWith('/approve'));
  await page.click('form[action$="/approve"] button[type=submit]');
  assert.equal((await refused).status(), 422);
  assert.equal(await page.locator('[role=alert]').count(), 1);
  const before = await (await fetch(`${demo.url}/v1/services`)).json();
  assert.equal(before.find((s) => s.id === 'wellness-coupons').status, 'pending');

  // Both ticked: approved.
  await page.check('input[value="special-care:coupons"]');
  await page.check('input[value="long-retention:coupons"]');
  const accepted = page.waitForResponse((r) => r.url().endsWith('/approve'));
  await page.click('form[action$="/approve"] button[type=submit]');
  assert.equal((await accepted).status(), 200);
  const after = await (await fetch(`${demo.url}/v1/services`)).json();
  assert.equal(after.find((s) => s.id === 'wellness-coupons').status, 'approved');
  // The refused approval's 422 is logged by the browser as a failed load; nothing else may be.
  assert.deepEqual(page.problems.filter((p) => !p.includes('status of 422')), []);
  await page.context().close();
});

// The consent page of a demo service's OpenID request (PKCE challenge of RFC 7636 appendix B).
const AUTHORIZE = `/oauth/authorize?${new URLSearchParams({
  response_type: 'code', client_id: 'health-advice',
  redirect_uri: 'http://localhost:8090/health-advice/callback',
  scope: 'openid profile health-advice', state: 'screenshot',
  code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256',
})}`;
const RESIDENT_PAGES = [
  ['portal-sign-in', '/portal/sign-in', false],
  ['portal-enrol', '/portal/enrol', false],
  ['portal-home', '/portal', true],
  ['portal-services', '/portal/services', true],
  ['portal-history', '/portal/history', true],
  ['portal-passkeys', '/portal/passkeys', true],
  ['portal-authorize', AUTHORIZE, true],
  ['portal-requests', '/portal/requests', true],
  ['portal-proxies', '/portal/proxies', true],
  ['portal-disclosure', '/portal/disclosure', true],
];
const CONSOLE_PAGES = [
  ['console-sign-in', '/console/sign-in', false],
  ['console-services', '/console', true],
  ['console-review', '/console/services/health-advice', true],
  ['console-categories', '/console/categories', true],
  ['console-providers', '/console/providers', true],
  ['console-audit', '/console/audit', true],
  ['console-audit-results', '/console/audit?outcome=granted&reason=monthly%20review', true],
  ['console-audit-operators', '/console/audit?outcome=operator', true],
  ['console-requests', '/console/requests', true],
];

for (const [width, viewport] of [['phone', PHONE], ['desktop', DESKTOP]]) {
  test(`every main page at ${width} width has no serious accessibility violation, in both languages`, async () => {
    const page = await newPage(browser, viewport);
    const failures = [];
    for (const lang of ['ja', 'en']) {
      for (const [pages, signIn] of [[RESIDENT_PAGES, signInResident], [CONSOLE_PAGES, signInOperator]]) {
        await page.goto(`${demo.url}/portal?lang=${lang}`);
        for (const [name, path, needsSession] of pages) {
          if (needsSession && !page.signedIn?.has(signIn)) {
            await signIn(page);
            page.signedIn = (page.signedIn ?? new Set()).add(signIn);
          }
          await page.goto(`${demo.url}${path}`);
          if (path === '/portal/history') await waitVerified(page);
          assert.equal(await page.getAttribute('html', 'lang'), lang, `${path} in ${lang}`);
          await screenshot(page, `${name}-${lang}-${width}`);
          const violations = await axe(page);
          if (violations.length > 0) failures.push({ page: `${path} (${lang}, ${width})`, violations });
        }
      }
    }
    assert.deepEqual(failures, [], JSON.stringify(failures, null, 2));
    assert.deepEqual(page.problems, [], 'no CSP violation or script error');
    await page.context().close();
  });
}
