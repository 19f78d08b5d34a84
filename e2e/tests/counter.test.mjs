// End-to-end: the city's counter (窓口) in Debian's chromium against the real `renkei demo`,
// in Japanese and in English. A resident enrols with a card of the demo's development CA;
// the demo's counter staff member signs in to the console (which opens on the counter),
// verifies the resident by the document they were shown (its kind, the name and birth date
// on it), gives a consent for them, and downloads the receipt: a PDF carrying the signed
// receipt and its QR code. The public check page, opened from the receipt, says it is
// genuine and refuses a tampered copy; the resident's history says "at the counter, by" the
// staff member.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  axe, DESKTOP, PHONE, launch, newPage, renkei, screenshot, startDemo,
} from './helpers.mjs';

const COUNTER_STAFF = '00000000-0000-4000-8000-00000000c0e0';

let demo;
let browser;
let cards;

before(async () => {
  demo = await startDemo();
  browser = await launch();
  cards = mkdtempSync(join(tmpdir(), 'renkei-counter-'));
});

after(async () => {
  await browser?.close();
  await demo?.stop();
  if (cards) rmSync(cards, { recursive: true, force: true });
});

/** Enrols a resident with a card naming `name`, born on `born`; resolves with their page. */
async function enrolledResident(name, born, file) {
  const prefix = join(cards, file);
  renkei('dev-ca', 'issue', '--dir', join(demo.dataDir, 'dev-ca'), '--name', name,
    '--birth-date', born, '--algorithm', 'ecdsa', '--out', prefix);
  const page = await newPage(browser, DESKTOP);
  await page.goto(`${demo.url}/portal/enrol`);
  const challenge = (await page.locator('#challenge').innerText()).trim();
  const signature = renkei('dev-ca', 'sign', '--key', `${prefix}-key.pem`, '--challenge', challenge);
  await page.setInputFiles('#certificate-file', `${prefix}.pem`);
  await page.waitForFunction(() => document.getElementById('certificate_chain').value.includes('BEGIN CERTIFICATE'));
  await page.fill('#signature', signature);
  await page.click('#enrol-form button[type=submit]');
  await page.waitForURL(/\/portal\/passkeys\?done=enrolled/);
  return page;
}

/** The demo's counter staff member, signed in to the console in `lang`. */
async function counterStaff(lang) {
  const page = await newPage(browser, DESKTOP);
  await page.goto(`${demo.url}/console/sign-in?lang=${lang}`);
  await page.fill('#identity', COUNTER_STAFF);
  await page.click('form[action="/console/sign-in/demo"] button[type=submit]');
  await page.waitForURL(`${demo.url}/console/counter`);
  return page;
}

function tampered(jws) {
  const [header, claims, signature] = jws.split('.');
  const json = Buffer.from(claims, 'base64url').toString('utf8').replace('"demo-counter"', '"someone"');
  return [header, Buffer.from(json).toString('base64url'), signature].join('.');
}

const CASES = [
  {
    lang: 'ja', name: '窓口 花子', born: '1975-04-01', file: 'hanako',
    document: 'drivers_licence', genuine: /本物です/, history: '窓口で（担当 demo-counter）',
  },
  {
    lang: 'en', name: 'Counter Taro', born: '1978-09-15', file: 'taro',
    document: 'passport', genuine: /genuine/, history: 'at the counter, by demo-counter',
  },
];

for (const c of CASES) {
  test(`counter staff verify a resident, give a consent and print a receipt the resident can check (${c.lang})`, async () => {
    const resident = await enrolledResident(c.name, c.born, c.file);
    const staff = await counterStaff(c.lang);
    assert.deepEqual(await axe(staff), [], 'the counter page passes axe');
    await screenshot(staff, `console-counter-${c.lang}-desktop`);

    // Verify by the document seen: its kind, the name and birth date on it.
    await staff.selectOption('#counter-document', c.document);
    await staff.fill('#counter-name', c.name);
    await staff.fill('#counter-birth', c.born);
    await staff.click('#counter-verify button[type=submit]');
    await staff.waitForURL(/\/console\/counter\/sessions\//);
    assert.match(await staff.locator('#counter-resident').innerText(), new RegExp(c.name));
    assert.deepEqual(await axe(staff), [], 'the session page passes axe');
    await screenshot(staff, `console-counter-session-${c.lang}-desktop`);

    // A consent for them, at the counter.
    await staff.selectOption('#counter-purpose', 'health-advice/health-advice');
    await staff.click('#counter-grant button[type=submit]');
    await staff.waitForURL(/\/console\/counter\/receipt\?/);
    const jws = new URL(staff.url()).searchParams.get('receipt');
    assert.equal(jws.split('.').length, 3, 'the receipt is a compact JWS');
    assert.deepEqual(await axe(staff), [], 'the receipt page passes axe');
    await screenshot(staff, `console-counter-receipt-${c.lang}-desktop`);

    // The printed receipt: a PDF holding the receipt (and the QR code carrying it).
    const [download] = await Promise.all([
      staff.waitForEvent('download'),
      staff.click('#receipt-pdf'),
    ]);
    const pdf = readFileSync(await download.path());
    assert.equal(pdf.subarray(0, 5).toString('latin1'), '%PDF-');
    const text = pdf.toString('latin1');
    assert.ok(text.includes(jws), 'the PDF carries the receipt');
    assert.match(text, /\/KozMinPr6N-Regular/);
    assert.match(text, / re\n/, 'the QR code is drawn');

    // The check page the QR code opens, on a phone, with no account.
    const phone = await newPage(browser, PHONE);
    await phone.goto(`${demo.url}/portal/receipts/check?receipt=${jws}&lang=${c.lang}`);
    assert.match(await phone.locator('#receipt-genuine').innerText(), c.genuine);
    assert.match(await phone.locator('#receipt-staff').innerText(), /demo-counter/);
    assert.deepEqual(await axe(phone), [], 'the check page passes axe');
    await screenshot(phone, `portal-receipt-check-${c.lang}-phone`);
    await phone.goto(`${demo.url}/portal/receipts/check?receipt=${tampered(jws)}&lang=${c.lang}`);
    assert.equal(await phone.locator('#receipt-genuine').count(), 0);
    assert.equal(await phone.locator('#receipt-not-genuine').count(), 1);
    // Pasted, as one types it from the paper.
    await phone.fill('#receipt-text', jws);
    await phone.click('form[action="/portal/receipts/check"] button[type=submit]');
    await phone.locator('#receipt-genuine').waitFor();

    // The resident sees the consent as given at the counter, by the staff member.
    await resident.goto(`${demo.url}/portal/history?lang=${c.lang}`);
    assert.ok((await resident.locator('main').innerText()).includes(c.history), 'history names the counter');
    await screenshot(resident, `portal-history-counter-${c.lang}-desktop`);

    for (const page of [staff, phone, resident]) {
      assert.deepEqual(page.problems, [], 'no CSP violation or script error');
      await page.context().close();
    }
  });
}
