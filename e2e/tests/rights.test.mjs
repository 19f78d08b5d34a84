// End-to-end: proxies and requests in Debian's chromium against the real `renkei demo`. A
// resident appoints a proxy; the proxy (a second browser, signed in as someone else) accepts
// the code and turns a purpose off; the resident sees it done by their proxy and ends the
// appointment; the proxy's next page load no longer acts for the resident. A resident files a
// disclosure request and an operator answers it in the console.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEMO_OPERATOR, PHONE, axe, launch, newPage, screenshot, startDemo } from './helpers.mjs';

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

async function seriousViolations(page) {
  return (await axe(page)).filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

test('a proxy acts for a resident until the resident ends the appointment', async () => {
  const resident = await newPage(browser);
  await signIn(resident, demo.resident);
  // The resident agrees to a purpose first, so there is something to turn off.
  await resident.goto(`${demo.url}/portal/services`);
  const start = resident.locator('#p-bousai-app-evacuation-support button[value=start]');
  if (await start.count() > 0) await start.click();
  await resident.goto(`${demo.url}/portal/proxies`);
  await resident.fill('#proxy-label', '窓口 田中');
  await resident.check('#may-consents');
  await resident.click('form[action="/portal/proxies/invite"] button[type=submit]');
  const code = (await resident.textContent('.one-time-code')).trim();
  assert.match(code, /^[0-9a-f-]{36}$/);
  await screenshot(resident, 'portal-proxies-code-ja-desktop');
  assert.deepEqual(await seriousViolations(resident), []);

  // The proxy: another person of the demo town (here the counter clerk), on a phone.
  const proxy = await newPage(browser, PHONE);
  await signIn(proxy, DEMO_OPERATOR);
  await proxy.goto(`${demo.url}/portal/proxies`);
  await proxy.fill('#accept-code', code);
  await proxy.click('form[action="/portal/acting/accept"] button[type=submit]');
  await proxy.waitForURL(`${demo.url}/portal`);
  assert.ok(await proxy.isVisible('.acting-banner'), 'every page says for whom they act');
  // Entrusted with consents only: no history, requests or proxies in the menu.
  for (const href of ['/portal/history', '/portal/requests', '/portal/proxies']) {
    assert.equal(await proxy.locator(`.main-nav a[href="${href}"]`).count(), 0, href);
  }
  await proxy.goto(`${demo.url}/portal/services`);
  await screenshot(proxy, 'portal-services-acting-ja-phone');
  assert.deepEqual(await seriousViolations(proxy), []);
  const stop = proxy.locator('#p-bousai-app-evacuation-support button[value=stop]');
  await stop.click();
  await proxy.waitForURL(/done=stopped/);

  // The resident sees it done by their proxy, and ends the appointment.
  await resident.goto(`${demo.url}/portal/proxies`);
  assert.match(await resident.textContent('.proxy-actions'), /同意を撤回しました/);
  await resident.goto(`${demo.url}/portal/history`);
  assert.match(await resident.textContent('.timeline'), /代理人の操作/);
  await resident.goto(`${demo.url}/portal/proxies`);
  await resident.click('form[action$="/end"] button[type=submit]');
  await resident.waitForURL(/done=ended/);

  // The proxy's next page load is back in their own portal, no longer acting.
  await proxy.goto(`${demo.url}/portal/services`);
  await proxy.waitForURL(/done=acting-ended/);
  assert.equal(await proxy.locator('.acting-banner').count(), 0);
  assert.deepEqual(resident.problems, []);
  assert.deepEqual(proxy.problems.filter((p) => !p.includes('status of 4')), []);
  await resident.context().close();
  await proxy.context().close();
});

test('a resident files a disclosure request and an operator answers it in the console', async () => {
  const resident = await newPage(browser);
  await signIn(resident, demo.resident);
  await resident.goto(`${demo.url}/portal/requests`);
  await resident.check('#kind-disclosure');
  await resident.selectOption('#request-service', 'health-advice');
  await resident.fill('#request-details', '健診結果としてどの情報が保有されているか知りたい');
  await resident.click('form[action="/portal/requests"] button[type=submit]');
  await resident.waitForURL(/done=filed/);
  assert.equal(await resident.locator('.request[data-status=received]').count(), 1);

  const operator = await newPage(browser);
  await operator.goto(`${demo.url}/console/sign-in`);
  await operator.fill('#identity', DEMO_OPERATOR);
  await operator.click('form[action="/console/sign-in/demo"] button[type=submit]');
  await operator.waitForURL(`${demo.url}/console`);
  await operator.goto(`${demo.url}/console/requests`);
  // The demo also holds an overdue request of another resident: take the one just filed.
  const open = operator.locator('.request[data-status=received]', { hasText: '健診結果としてどの情報' });
  await open.locator('select[name=status]').selectOption('completed');
  await open.locator('textarea[name=response]').fill('保有している項目を郵送でお知らせしました。');
  await open.locator('form[action$="/answer"] button[type=submit]').click();
  await operator.waitForURL(/done=answered/);
  await screenshot(operator, 'console-requests-answered-ja-desktop');

  await resident.goto(`${demo.url}/portal/requests`);
  assert.equal(await resident.locator('.request[data-status=completed]').count(), 1);
  assert.match(await resident.textContent('.requests'), /郵送でお知らせしました/);
  assert.deepEqual(resident.problems, []);
  assert.deepEqual(operator.problems, []);
  await resident.context().close();
  await operator.context().close();
});
