// End-to-end: a declared emergency in Debian's chromium against the real `renkei demo`. One
// operator declares in the console, a second confirms it (the first may not), a responder
// service asks for the evacuation-support register in an area and is served every entry
// there without consent, an operator ends it, and a resident on the register sees the release
// marked with the declaration in "who used my data" and the notice of it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DEMO_OPERATOR, axe, launch, newPage, screenshot, serviceToken, startDemo,
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

/** The guide resident's code at the city registry, as their portal shows it. */
async function registryCode() {
  const signIn = await fetch(`${demo.url}/demo/sign-in`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ resident: demo.resident }),
  });
  const token = (await signIn.json()).access_token;
  const codes = await (await fetch(`${demo.url}/v1/me/provider-codes`, {
    headers: { authorization: `Bearer ${token}` },
  })).json();
  return codes.find((c) => c.provider === 'city-registry').code;
}

/** The codes of the residents on the demo registry's evacuation-support register, from the
 *  links its kit keeps (code → the registry's reference) in the demo's data folder. */
function registerCodes() {
  const csv = readFileSync(join(demo.dataDir, 'providers', 'city-registry', 'links-evacuation.support.csv'), 'utf8');
  const [header, ...rows] = csv.trim().split('\n');
  assert.equal(header, 'code,reference');
  return rows.map((row) => row.split(',')[0]);
}

/** The responder asks for every entry of the register inside `area` under the declaration. */
async function areaList(token, declaration, area) {
  const r = await fetch(`${demo.url}/v1/area-lists`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      declaration, purpose: 'evacuation-support', categories: ['evacuation.support'], area,
    }),
  });
  return { status: r.status, body: await r.json() };
}

// Every entry of the town's register lies in the half meshes of 2次メッシュ 533945 (town.rs),
// the guide resident's too; 533946 is the next one east, outside the declared area.
const TOWN = '533945';
const OUTSIDE = '533946';

test('two operators declare an emergency, a responder gets the area list, and the resident is told afterwards', async () => {
  // The guide resident is on the register, and has never consented to the responder.
  const code = await registryCode();
  const register = registerCodes();
  assert.ok(register.includes(code), 'the guide resident is on the evacuation-support register');
  const responder = await serviceToken(demo.url, 'bousai-app');

  // The first operator declares.
  const first = await newPage(browser);
  await signInOperator(first, DEMO_OPERATOR);
  await first.goto(`${demo.url}/console/declarations`);
  await first.fill('#d-reason', '線状降水帯による大雨（訓練）');
  await first.selectOption('#d-basis', 'disaster_act49_11');
  await first.check('input[name=category][value="evacuation.support"]');
  await first.check('input[name=service][value="bousai-app"]');
  await first.fill('#d-area', `${TOWN} district:hikari-1`);
  await first.click('#declare-form button[type=submit]');
  await first.waitForURL(/done=declared/);
  const card = first.locator('.console-declaration').first();
  assert.equal(await card.getAttribute('data-state'), 'pending');
  const id = await card.getAttribute('data-declaration');
  assert.equal(await card.locator('form[action$="/confirm"]').count(), 0, 'the declarer is not offered confirmation');
  await screenshot(first, 'console-declaration-pending-ja-desktop');
  assert.deepEqual(await axe(first), []);
  const pending = await areaList(responder, id, [TOWN]);
  assert.equal(pending.status, 403, 'pending: denied');
  assert.match(pending.body.type, /emergency-not-in-force/);

  // The second operator confirms.
  const second = await newPage(browser);
  await signInOperator(second, SECOND_OPERATOR);
  await second.goto(`${demo.url}/console/declarations?lang=en`);
  const theirs = second.locator(`.console-declaration[data-declaration="${id}"]`);
  await theirs.locator('form[action$="/confirm"] button').click();
  await second.waitForURL(/done=confirmed/);
  assert.equal(await second.locator(`.console-declaration[data-declaration="${id}"]`).getAttribute('data-state'), 'in_force');
  assert.match(await second.textContent('#declaration-message'), /takes effect/);

  // The responder asks for the register in an area: outside the declared area it is denied;
  // inside, every entry there is released, each sealed to it on its own, one access record
  // per resident.
  const outside = await areaList(responder, id, [OUTSIDE]);
  assert.equal(outside.status, 403, JSON.stringify(outside.body));
  assert.match(outside.body.type, /area-not-in-emergency/);
  const served = await areaList(responder, id, [TOWN]);
  assert.equal(served.status, 200, JSON.stringify(served.body));
  assert.equal(served.body.declaration, id);
  assert.deepEqual(served.body.providers.map((p) => [p.provider, p.status, p.entries]),
    [['city-registry', 'ok', register.length]]);
  assert.equal(served.body.not_relayed, 0);
  assert.equal(served.body.entries.length, register.length, 'every entry of the register in the area, the guide resident\'s among them');
  for (const entry of served.body.entries) {
    assert.equal(entry.provider, 'city-registry');
    assert.deepEqual(entry.categories, ['evacuation.support']);
    assert.ok(entry.subject && entry.payload, 'a subject and a sealed payload');
  }
  assert.equal(new Set(served.body.entries.map((e) => e.subject)).size, register.length, 'one entry per resident');
  assert.equal(new Set(served.body.entries.map((e) => e.log_position)).size, register.length, 'one access record per resident');

  // The resident sees the declaration in force on the start page, then it is ended.
  const resident = await newPage(browser);
  await signInResident(resident);
  assert.equal(await resident.locator(`#active-declarations [data-declaration="${id}"]`).count(), 1);
  await resident.goto(`${demo.url}/portal/notices`);
  assert.equal(await resident.locator('.notice-card').count(), 0, 'no notice while it is in force');

  await first.goto(`${demo.url}/console/declarations`);
  await first.locator(`.console-declaration[data-declaration="${id}"] form[action$="/end"] button`).click();
  await first.waitForURL(/done=ended/);
  const ended = await areaList(responder, id, [TOWN]);
  assert.equal(ended.status, 403, 'ended: denied again');
  assert.match(ended.body.type, /emergency-not-in-force/);

  // The history marks the release with the declaration, verified against the signed log.
  await resident.goto(`${demo.url}/portal/history`);
  await resident.waitForSelector('#log[data-verified]', { timeout: 15_000 });
  assert.equal(await resident.locator('li.entry.emergency').count(), 1, 'one record of the one area list');
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
  assert.match(text, /ひかり台防災アプリ/);
  assert.equal(await notice.locator('li.release').count(), 1);
  await screenshot(resident, 'portal-notices-ja-desktop');
  assert.deepEqual(await axe(resident), []);
  await notice.locator('a.button').click();
  await resident.waitForURL(/\/portal\/requests\?/);
  assert.match(await resident.inputValue('#request-details'), new RegExp(id));
  assert.equal(await resident.inputValue('#request-service'), 'bousai-app');

  // The history now links the entry to its notice too.
  await resident.goto(`${demo.url}/portal/history`);
  assert.equal(await resident.locator(`li.entry.emergency a[href="/portal/notices#notice-${id}"]`).count(), 1);

  for (const page of [first, second, resident]) {
    assert.deepEqual(page.problems, []);
    await page.context().close();
  }
});
