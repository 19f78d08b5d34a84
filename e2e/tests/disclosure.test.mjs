// End-to-end: the disclosure package (開示) in Debian's chromium against the real
// `renkei demo`, in Japanese and in English. The resident asks for everything about them:
// the browser makes their key (saved as a file) and the package downloads; the page's own
// check says it verifies, and refuses it once edited; `renkei verify-package` opens the
// providers' sealed answers with the key the browser saved; the history shows the
// disclosure. An operator's search naming the resident, with its reason, shows in the
// resident's history and checks against the signed log too.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEMO_OPERATOR, axe, launch, newPage, renkei, screenshot, startDemo } from './helpers.mjs';

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

async function signIn(page, resident) {
  await page.goto(`${demo.url}/portal/sign-in`);
  await page.fill('#resident', resident);
  await page.click('form[action="/portal/sign-in/demo"] button[type=submit]');
  await page.waitForURL(`${demo.url}/portal`);
}

const WORDS = {
  ja: { verified: /検証できました/, refused: /検証できませんでした/, history: /開示パッケージを作成しました/ },
  en: { verified: /The package verifies/, refused: /does not verify/, history: /a disclosure package was made for you/ },
};

for (const lang of ['ja', 'en']) {
  test(`a resident downloads their disclosure package and the page says it verifies (${lang})`, async () => {
    const dir = mkdtempSync(join(tmpdir(), `renkei-disclosure-${lang}-`));
    const page = await newPage(browser);
    await signIn(page, demo.resident);
    await page.goto(`${demo.url}/portal/disclosure?lang=${lang}`);
    assert.equal(await page.getAttribute('html', 'lang'), lang);
    assert.deepEqual(await axe(page), []);
    await screenshot(page, `portal-disclosure-${lang}-desktop`);

    // Asking: first the key the browser made, then the package.
    const downloads = [];
    page.on('download', (d) => downloads.push(d));
    await page.click('#disclosure-form button[type=submit]');
    const deadline = Date.now() + 30_000;
    while (downloads.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(downloads.length, 2, 'the key and the package downloaded');
    const key = downloads.find((d) => d.suggestedFilename() === 'renkei-disclosure-key.txt');
    const pkg = downloads.find((d) => /^renkei-disclosure-.*\.json$/.test(d.suggestedFilename()));
    assert.ok(key && pkg, downloads.map((d) => d.suggestedFilename()).join(', '));
    const keyPath = join(dir, 'key.txt');
    const pkgPath = join(dir, 'package.json');
    await key.saveAs(keyPath);
    await pkg.saveAs(pkgPath);
    const text = readFileSync(pkgPath, 'utf8');
    const parsed = JSON.parse(text);
    assert.equal(parsed.format, 'renkei-disclosure/1');
    assert.equal(parsed.resident, demo.resident);
    assert.ok(parsed.providers.length > 0 && parsed.providers.every((p) => p.payload), 'every provider answered, sealed');
    assert.ok(!text.includes('hba1c_percent'), 'the providers\' data is sealed');

    // The page's check: verified.
    await page.setInputFiles('#package-file', pkgPath);
    await page.waitForSelector('#check[data-verified="all"], #check[data-verified="failed"]', { timeout: 30_000 });
    assert.equal(await page.getAttribute('#check', 'data-verified'), 'all', await page.textContent('#check'));
    assert.match(await page.textContent('#check .verify-summary'), WORDS[lang].verified);
    assert.deepEqual(await axe(page), []);
    await screenshot(page, `portal-disclosure-verified-${lang}-desktop`);

    // Edited, it is refused.
    parsed.log.entries[0].entry = parsed.log.entries[0].entry.replace('"at":"', '"at":"1');
    const tampered = join(dir, 'tampered.json');
    writeFileSync(tampered, JSON.stringify(parsed));
    await page.setInputFiles('#package-file', tampered);
    await page.waitForSelector('#check[data-verified="failed"]', { timeout: 30_000 });
    assert.match(await page.textContent('#check .verify-summary'), WORDS[lang].refused);

    // The key the browser saved opens the sealed answers, offline.
    const opened = renkei('verify-package', pkgPath, '--key', keyPath);
    assert.match(opened, /^verified:/);
    assert.match(opened, /opened and verified/);
    assert.match(opened, /hba1c_percent/);

    // The disclosure is in the history, and checks against the signed log.
    await page.goto(`${demo.url}/portal/history?lang=${lang}`);
    assert.match(await page.textContent('.timeline'), WORDS[lang].history);
    await page.waitForSelector('#log[data-verified]', { timeout: 30_000 });
    assert.equal(await page.getAttribute('#log', 'data-verified'), 'all');
    assert.deepEqual(page.problems, []);
  });
}

test('an operator\'s search naming the resident shows in their history with its reason', async () => {
  const operator = await newPage(browser);
  await operator.goto(`${demo.url}/console/sign-in`);
  await operator.fill('#identity', DEMO_OPERATOR);
  await operator.click('form[action="/console/sign-in/demo"] button[type=submit]');
  await operator.waitForURL(`${demo.url}/console`);
  await operator.goto(`${demo.url}/console/audit`);
  await operator.fill('#a-resident', demo.resident);
  // Without a reason, the search is refused.
  await operator.click('form[action="/console/audit"] button[type=submit]');
  await operator.waitForSelector('.notice.error');
  assert.equal(await operator.locator('table.audit').count(), 0);
  await operator.fill('#a-reason', '苦情 2026-114 の調査');
  await operator.click('form[action="/console/audit"] button[type=submit]');
  await operator.waitForSelector('#results-h');
  assert.deepEqual(await axe(operator), []);

  const resident = await newPage(browser);
  await signIn(resident, demo.resident);
  await resident.goto(`${demo.url}/portal/history`);
  const looked = resident.locator('li.entry[data-outcome=looked]').first();
  assert.match(await looked.textContent(), /苦情 2026-114 の調査/);
  await resident.waitForSelector('#log[data-verified]', { timeout: 30_000 });
  assert.equal(await resident.getAttribute('#log', 'data-verified'), 'all');
  assert.equal(await looked.locator('.verify').getAttribute('data-state'), 'verified');
  await screenshot(resident, 'portal-history-looked-ja-desktop');
  assert.deepEqual(resident.problems, []);
  assert.deepEqual(operator.problems.filter((p) => !p.includes('status of 4')), []);
  await resident.context().close();
  await operator.context().close();
});
