// End-to-end: onboarding in the console, in Debian's chromium against the real `renkei demo`.
// An operator adds a data category to the vocabulary, registers a provider serving it (with
// the public key its kit signs with), sees it wait for review, and approves it; the hub then
// publishes the provider and its key to services at GET /v1/providers.
import { generateKeyPairSync } from 'node:crypto';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEMO_OPERATOR, axe, launch, newPage, screenshot, startDemo } from './helpers.mjs';

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

async function signInOperator(page) {
  await page.goto(`${demo.url}/console/sign-in`);
  await page.fill('#identity', DEMO_OPERATOR);
  await page.click('form[action="/console/sign-in/demo"] button[type=submit]');
  await page.waitForURL(`${demo.url}/console`);
}

/** A provider's public signing key as `renkei provider keygen` prints it. */
function publicJwk() {
  const { publicKey } = generateKeyPairSync('ed25519');
  const jwk = publicKey.export({ format: 'jwk' });
  return { ...jwk, kid: 'lab-2026-12', alg: 'EdDSA', use: 'sig' };
}

test('an operator registers a provider and its categories in the console', async () => {
  const page = await newPage(browser);
  await signInOperator(page);

  // The vocabulary first: the provider serves a category the city adds now.
  await page.goto(`${demo.url}/console/categories`);
  await page.fill('#c-id', 'health.lab');
  await page.fill('#c-name-ja', '臨床検査結果');
  await page.fill('#c-name-en', 'Clinical lab results');
  await page.check('#c-special');
  await page.click('#category-form button[type=submit]');
  await page.waitForSelector('p.notice[role=status]');
  assert.match(await page.textContent('table'), /health\.lab/);
  assert.match(await page.textContent('table'), /臨床検査結果/);

  // A registration the hub refuses is shown again as typed, saying why.
  await page.goto(`${demo.url}/console/providers`);
  await page.fill('#p-id', 'hikari-lab');
  await page.fill('#p-name-ja', 'ひかり台検査センター');
  await page.fill('#p-name-en', 'Hikaridai Laboratory');
  await page.fill('#p-endpoint', 'http://127.0.0.1:9');
  await page.check('input[name=category][value="health.lab"]');
  await page.check('input[name=category][value="health.checkup"]');
  await page.fill('#p-keys', JSON.stringify({ ...publicJwk(), d: 'not-a-real-private-key' }));
  await page.fill('#p-contact', 'ひかり台検査センター 情報管理室');
  await page.fill('#p-email', 'records@hikari-lab.example');
  await page.fill('#p-phone', '+81-3-0000-0120');
  await page.fill('#p-postal', '999-0102');
  await page.fill('#p-region', 'ひかり県');
  await page.fill('#p-locality', 'ひかり台市');
  await page.fill('#p-street', '中央二丁目3番4号');
  await page.click('#provider-form button[type=submit]');
  await page.waitForSelector('#register-error');
  assert.match(await page.textContent('#register-error'), /private key/);
  assert.equal(await page.inputValue('#p-id'), 'hikari-lab', 'the form keeps what was typed');
  assert.ok(await page.isChecked('input[name=category][value="health.lab"]'));
  // The refusal is a 422 page, which the browser logs as a failed load: expected here.
  page.problems = page.problems.filter((p) => !p.includes('status of 422'));

  // With the public key only, it is registered and waits for review.
  const jwk = publicJwk();
  await page.fill('#p-keys', JSON.stringify(jwk));
  await page.click('#provider-form button[type=submit]');
  await page.waitForSelector('p.notice[role=status]');
  const row = page.locator('tr[data-provider="hikari-lab"]');
  assert.equal(await row.locator('.badge.pending').count(), 1);
  assert.match(await row.textContent(), /health\.lab/);
  assert.match(await row.textContent(), /lab-2026-12/);
  await screenshot(page, 'console-providers-pending-ja-desktop');
  assert.deepEqual((await axe(page)).filter((v) => v.impact === 'serious' || v.impact === 'critical'), []);
  let published = await (await fetch(`${demo.url}/v1/providers`)).json();
  assert.ok(!published.some((p) => p.id === 'hikari-lab'), 'not published before approval');

  // Approved: published with its categories and the key services verify its answers with.
  await row.locator('form[action$="/approve"] button').click();
  await page.waitForURL(`${demo.url}/console/providers`);
  assert.equal(await page.locator('tr[data-provider="hikari-lab"] .badge.approved').count(), 1);
  published = await (await fetch(`${demo.url}/v1/providers`)).json();
  const lab = published.find((p) => p.id === 'hikari-lab');
  assert.deepEqual(lab.categories, ['health.checkup', 'health.lab']);
  assert.equal(lab.signing_keys.keys[0].x, jwk.x);

  // Each act is an operator entry of the audit log.
  await page.goto(`${demo.url}/console/audit?outcome=operator`);
  const audit = await page.textContent('main');
  for (const act of ['データ項目を追加', 'データ保有者を登録', 'データ保有者を承認']) {
    assert.ok(audit.includes(act), act);
  }
  assert.deepEqual(page.problems, []);
  await page.context().close();
});
