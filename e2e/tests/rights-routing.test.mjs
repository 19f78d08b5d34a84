// End-to-end: a resident's deletion request routed to whoever holds the data, in Debian's
// chromium against the real `renkei demo`. The service that received the resident's data
// answers through the API; the resident's portal shows each recipient's answer (the service
// done, the providers not yet), in Japanese and in English; the console's queue flags the
// demo's overdue request and reports it in its summary, in both languages.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEMO_OPERATOR, axe, dataRequest, launch, newPage, screenshot, serviceToken, startDemo } from './helpers.mjs';

let demo;
let browser;
let requestId;

/** The resident's session token (demo sign-in). */
async function residentToken(resident) {
  const r = await fetch(`${demo.url}/demo/sign-in`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ resident }),
  });
  return (await r.json()).access_token;
}

async function post(path, token, body) {
  return fetch(`${demo.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

before(async () => {
  demo = await startDemo();
  browser = await launch();
  // The resident agrees to health-advice, which then receives their check-up results.
  const resident = await residentToken(demo.resident);
  const consent = await post('/v1/me/consents', resident, { service: 'health-advice', purpose: 'health-advice' });
  assert.equal(consent.status, 201);
  const { subject } = await consent.json();
  const health = await serviceToken(demo.url, 'health-advice');
  const data = await dataRequest(demo.url, health, subject, 'health-advice', ['health.checkup']);
  assert.equal(data.status, 200, JSON.stringify(data.body));
  // The resident asks for its deletion: it goes to the service and to the clinic.
  const filed = await post('/v1/me/requests', resident, {
    kind: 'deletion', service: 'health-advice', details: '健診結果を削除してください',
  });
  assert.equal(filed.status, 201);
  const request = await filed.json();
  requestId = request.id;
  const recipients = request.recipients.map((r) => `${r.kind}:${r.id}`);
  assert.ok(recipients.includes('service:health-advice'), recipients.join());
  assert.ok(recipients.some((r) => r.startsWith('provider:')), recipients.join());
  // The service answers through the API.
  const answered = await post(`/v1/service/rights-requests/${requestId}/answer`, health, { answer: 'done' });
  assert.equal(answered.status, 200);
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

async function seriousViolations(page) {
  return (await axe(page)).filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

const WORDS = {
  ja: { done: '対応済み', pending: '未回答', status: '対応中', overdue: '期限超過', due: '初回回答の期限' },
  en: { done: 'Done', pending: 'Not answered yet', status: 'In progress', overdue: 'Overdue', due: 'First answer due by' },
};

for (const lang of ['ja', 'en']) {
  test(`the resident sees each recipient's answer to a routed request (${lang})`, async () => {
    const page = await newPage(browser);
    await signIn(page, demo.resident);
    await page.goto(`${demo.url}/portal/requests?lang=${lang}`);
    assert.equal(await page.getAttribute('html', 'lang'), lang);
    const mine = page.locator(`#r-${requestId}`);
    assert.equal(await mine.getAttribute('data-status'), 'in_progress');
    const service = mine.locator('.recipient[data-kind=service]');
    assert.equal(await service.getAttribute('data-answer'), 'done');
    assert.match(await service.textContent(), new RegExp(WORDS[lang].done));
    const providers = mine.locator('.recipient[data-kind=provider]');
    assert.ok(await providers.count() >= 1);
    assert.equal(await providers.first().getAttribute('data-answer'), 'pending');
    assert.match(await providers.first().textContent(), new RegExp(WORDS[lang].pending));
    assert.match(await mine.textContent(), new RegExp(WORDS[lang].status));
    assert.match(await mine.locator('.request-due').textContent(), /\d/);
    assert.match(await mine.textContent(), new RegExp(WORDS[lang].due));
    await screenshot(page, `portal-requests-routed-${lang}-desktop`);
    assert.deepEqual(await seriousViolations(page), []);
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });

  test(`the console flags the overdue request and reports it in its summary (${lang})`, async () => {
    const operator = await newPage(browser);
    await operator.goto(`${demo.url}/console/sign-in?lang=${lang}`);
    await operator.fill('#identity', DEMO_OPERATOR);
    await operator.click('form[action="/console/sign-in/demo"] button[type=submit]');
    await operator.waitForURL((u) => !u.pathname.startsWith('/console/sign-in'));
    await operator.goto(`${demo.url}/console/requests?lang=${lang}`);
    assert.equal(await operator.getAttribute('html', 'lang'), lang);
    // The demo's overdue correction is flagged and counted; the routed request is not overdue.
    const overdue = operator.locator('.request[data-overdue=true]');
    assert.equal(await overdue.count(), 1);
    assert.match(await overdue.locator('.overdue-flag').textContent(), new RegExp(WORDS[lang].overdue));
    assert.equal((await operator.textContent('#overdue-count')).trim(), '1');
    assert.equal(await operator.getAttribute(`#r-${requestId}`, 'data-overdue'), 'false');
    const routed = operator.locator(`#r-${requestId} .recipient[data-kind=service]`);
    assert.equal(await routed.getAttribute('data-answer'), 'done');
    await screenshot(operator, `console-requests-overdue-${lang}-desktop`);
    assert.deepEqual(await seriousViolations(operator), []);
    assert.deepEqual(operator.problems, []);
    await operator.context().close();
  });
}
