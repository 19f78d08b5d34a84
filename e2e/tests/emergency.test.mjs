// End-to-end: a declared emergency in Debian's chromium against the real `renkei demo`. One
// operator declares in the console, a second confirms it (the first may not), a responder's
// request without consent is granted under it, an operator ends it, and the resident sees
// the release marked with the declaration in "who used my data" and the notice of it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEMO_OPERATOR, axe, dataRequest, launch, newPage, screenshot, serviceToken, startDemo,
} from './helpers.mjs';

const SECOND_OPERATOR = '00000000-0000-4000-8000-00000000c0df';

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

async function signInOperator(page, identity) {
  await page.goto(`${demo.url}/console/sign-in`);
  await page.fill('#identity', identity);
  await page.click('form[action="/console/sign-in/demo"] button[type=submit]');
  await page.waitForURL(`${demo.url}/console`);
}

async function signInResident(page) {
  await page.goto(`${demo.url}/portal/sign-in`);
  await page.fill('#resident', demo.resident);
  await page.click('form[action="/portal/sign-in/demo"] button[type=submit]');
  await page.waitForURL(`${demo.url}/portal`);
}

/** The guide resident's subject at health-advice, known to the service from a consent the
 *  resident then withdrew: from here on, only a declaration can release their data to it. */
async function subjectWithoutConsent() {
  const signIn = await fetch(`${demo.url}/demo/sign-in`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ resident: demo.resident }),
  });
  const token = (await signIn.json()).access_token;
  const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const granted = await (await fetch(`${demo.url}/v1/me/consents`, {
    method: 'POST', headers: auth,
    body: JSON.stringify({ service: 'health-advice', purpose: 'health-advice' }),
  })).json();
  const revoked = await fetch(`${demo.url}/v1/me/consents/${granted.consent.id}/revoke`, {
    method: 'POST', headers: auth,
  });
  assert.ok(revoked.ok, `revoke: ${revoked.status}`);
  return granted.subject;
}

test('two operators declare an emergency, a responder is served, and the resident is told afterwards', async () => {
  const subject = await subjectWithoutConsent();
  const responder = await serviceToken(demo.url, 'health-advice');
  const ask = () => dataRequest(demo.url, responder, subject, 'health-advice', ['health.checkup']);
  assert.equal((await ask()).status, 403, 'no consent, no declaration: denied');

  // The first operator declares.
  const first = await newPage(browser);
  await signInOperator(first, DEMO_OPERATOR);
  await first.goto(`${demo.url}/console/declarations`);
  await first.fill('#d-reason', '線状降水帯による大雨（訓練）');
  await first.selectOption('#d-basis', 'disaster_act49_11');
  await first.check('input[name=category][value="health.checkup"]');
  await first.check('input[name=service][value="health-advice"]');
  await first.fill('#d-area', '5339 53394526 district:hikari-1');
  await first.click('#declare-form button[type=submit]');
  await first.waitForURL(/done=declared/);
  const card = first.locator('.console-declaration').first();
  assert.equal(await card.getAttribute('data-state'), 'pending');
  const id = await card.getAttribute('data-declaration');
  assert.equal(await card.locator('form[action$="/confirm"]').count(), 0, 'the declarer is not offered confirmation');
  await screenshot(first, 'console-declaration-pending-ja-desktop');
  assert.deepEqual(await axe(first), []);
  assert.equal((await ask()).status, 403, 'pending: still denied');

  // The second operator confirms.
  const second = await newPage(browser);
  await signInOperator(second, SECOND_OPERATOR);
  await second.goto(`${demo.url}/console/declarations?lang=en`);
  const theirs = second.locator(`.console-declaration[data-declaration="${id}"]`);
  await theirs.locator('form[action$="/confirm"] button').click();
  await second.waitForURL(/done=confirmed/);
  assert.equal(await second.locator(`.console-declaration[data-declaration="${id}"]`).getAttribute('data-state'), 'in_force');
  assert.match(await second.textContent('#declaration-message'), /takes effect/);

  // The responder is served under it, without consent.
  const served = await ask();
  assert.equal(served.status, 200, JSON.stringify(served.body));

  // The resident sees the declaration in force on the start page, then it is ended.
  const resident = await newPage(browser);
  await signInResident(resident);
  assert.equal(await resident.locator(`#active-declarations [data-declaration="${id}"]`).count(), 1);
  await resident.goto(`${demo.url}/portal/notices`);
  assert.equal(await resident.locator('.notice-card').count(), 0, 'no notice while it is in force');

  await first.goto(`${demo.url}/console/declarations`);
  await first.locator(`.console-declaration[data-declaration="${id}"] form[action$="/end"] button`).click();
  await first.waitForURL(/done=ended/);
  assert.equal((await ask()).status, 403, 'ended: denied again');

  // The history marks the release with the declaration, verified against the signed log.
  await resident.goto(`${demo.url}/portal/history`);
  await resident.waitForSelector('#log[data-verified]', { timeout: 15_000 });
  const entry = resident.locator('li.entry.emergency').first();
  assert.equal(await entry.locator('.verify').getAttribute('data-state'), 'verified');
  assert.equal(await entry.locator(`a[href="/portal/declarations/${id}"]`).count(), 1);

  // The notice: what went to whom under which declaration, and a request about it.
  let notices = 0;
  for (let i = 0; i < 40 && notices === 0; i += 1) {
    await resident.goto(`${demo.url}/portal/notices`);
    notices = await resident.locator(`#notice-${id}`).count();
    if (notices === 0) await new Promise((r) => setTimeout(r, 250));
  }
  assert.equal(notices, 1, 'one notice, once the declaration ended');
  const notice = resident.locator(`#notice-${id}`);
  const text = await notice.innerText();
  assert.match(text, /線状降水帯による大雨/);
  assert.match(text, /ひかり台けんこうナビ/);
  assert.equal(await notice.locator('li.release').count(), 1);
  await screenshot(resident, 'portal-notices-ja-desktop');
  assert.deepEqual(await axe(resident), []);
  await notice.locator('a.button').click();
  await resident.waitForURL(/\/portal\/requests\?/);
  assert.match(await resident.inputValue('#request-details'), new RegExp(id));
  assert.equal(await resident.inputValue('#request-service'), 'health-advice');

  // The history now links the entry to its notice too.
  await resident.goto(`${demo.url}/portal/history`);
  assert.equal(await resident.locator(`li.entry.emergency a[href="/portal/notices#notice-${id}"]`).count(), 1);

  for (const page of [first, second, resident]) {
    assert.deepEqual(page.problems, []);
    await page.context().close();
  }
});
