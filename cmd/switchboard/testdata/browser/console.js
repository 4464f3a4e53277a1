// console.js is the browser of TestConsoleBrowser (cmd/switchboard): it
// drives the web console in headless Chromium with playwright-core, with
// the settings of CONSOLE_CONFIG (JSON: chromium, url, token, out, reason,
// newReason, broken; file, the config file it changes on disk; link, the
// config's symlink, which it points at roFile, in a read-only folder). It
// prints one line per step on stdout for the Go test to follow and check
// ("registered ...", "live CALL-ID", "ladder [...]", "saved applied",
// "error line N ...", ...), saves a screenshot
// of each page in cfg.out, and exits 0 when every step went as planned.
'use strict';

const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const cfg = JSON.parse(process.env.CONSOLE_CONFIG || '{}');
const say = (line) => process.stdout.write(line + '\n');
const within = cfg.within || 30000;

async function shot(page, name) {
  await page.screenshot({ path: path.join(cfg.out, name + '.png'), fullPage: true });
}

async function run(page) {
  // A wrong token is refused on the login page itself.
  await page.goto(cfg.url + 'login');
  await page.fill('#token', 'not-the-token');
  await page.click('button[type=submit]');
  await page.waitForSelector('#login-error:not([hidden])');
  say('login refused: ' + (await page.textContent('#login-error')));
  await page.fill('#token', cfg.token);
  await shot(page, 'login');
  await page.click('button[type=submit]');
  await page.waitForURL(cfg.url, { timeout: within });
  say('logged in');

  // The registration SIPp made, with its device's details.
  await page.goto(cfg.url + '#/registrations');
  // The store keys an AOR by its user alone, or by user@domain.
  const row = page.locator(`#reg-rows tr[data-aor="${cfg.user}"], #reg-rows tr[data-aor^="sip:${cfg.user}@"]`).first();
  await row.waitFor({ timeout: within });
  const cells = await row.locator('td').allTextContents();
  say('registered ' + JSON.stringify({ aor: await row.getAttribute('data-aor'), contact: await row.getAttribute('data-contact'), cells }));
  await shot(page, 'registrations');

  // The call, live, then over; its ladder.
  await page.goto(cfg.url + '#/calls');
  await page.waitForSelector('#calls-active tr[data-call-id]', { timeout: within });
  const callID = await page.getAttribute('#calls-active tr[data-call-id]', 'data-call-id');
  say('live ' + callID);
  await shot(page, 'calls-live');
  const recent = `#calls-recent tr[data-call-id="${cssString(callID)}"]`;
  await page.waitForSelector(recent, { timeout: within });
  say('ended ' + (await page.locator(recent).locator('td').allTextContents()).join(' | '));
  await shot(page, 'calls');
  const listed = (await page.locator(recent).locator('td').allTextContents()).join(' | ');
  await page.click(recent);
  await page.waitForSelector('#ladder .msg', { timeout: within });
  // The caller's display name is a script: shown as text, run nowhere.
  const summaryFrom = await page.locator('dl.facts dt:text-is("From") + dd').first().textContent();
  say('from ' + JSON.stringify({ list: listed, ladder: summaryFrom }));
  // The recorder may take the last 200 a moment after the call's record
  // ends: reload until the ladder holds the answer to the BYE, relayed.
  const deadline = Date.now() + within;
  let ladder;
  for (;;) {
    ladder = await page.$$eval('#ladder .msg', (gs) => gs.map((g) => ({ from: g.dataset.from, to: g.dataset.to, label: g.querySelector('.label').textContent })));
    const bye = ladder.findIndex((m) => m.label === 'BYE');
    if (bye >= 0 && ladder.slice(bye).filter((m) => m.label.startsWith('200')).length >= 2) break;
    if (Date.now() > deadline) break;
    await page.waitForTimeout(200);
    await page.reload();
    await page.waitForSelector('#ladder .msg', { timeout: within });
  }
  say('ladder ' + JSON.stringify(ladder));
  await page.click('#ladder .msg[data-index="0"]');
  await page.waitForSelector('#msg-text');
  const text = await page.textContent('#msg-text');
  const decisions = await page.$$eval('#decisions tbody tr', (rows) => rows.map((r) => r.children[0].textContent));
  say('detail ' + JSON.stringify({ first: text.split('\n')[0].trim(), decisions }));
  await shot(page, 'ladder');

  // The config editor: a good edit is saved and applied.
  await page.goto(cfg.url + '#/config');
  await page.waitForSelector('#editor .ln');
  const loaded = await page.inputValue('#config-text');
  if (!loaded.includes(cfg.reason)) throw new Error('the editor does not show ' + cfg.reason);
  if (loaded.includes(cfg.token)) throw new Error('the editor shows the admin token');
  // The file changes on disk after the page loaded it: Save refuses.
  fs.appendFileSync(cfg.file, '\n# changed on disk\n');
  await page.fill('#config-text', loaded.replace(cfg.reason, cfg.newReason));
  await page.click('#config-save');
  await page.waitForFunction(() => /Changed on disk/.test(document.getElementById('config-result').textContent), null, { timeout: within });
  say('conflict ' + JSON.stringify({ text: await page.textContent('#config-result') }));
  await shot(page, 'config-conflict');
  await page.click('#config-load-disk');
  await page.waitForFunction(() => document.getElementById('config-text').value.includes('# changed on disk'), null, { timeout: within });
  const original = await page.inputValue('#config-text');
  await page.fill('#config-text', original.replace(cfg.reason, cfg.newReason));
  await page.waitForSelector('#diff-edit .add');
  await page.click('#config-save');
  await page.waitForSelector('#config-outcome', { timeout: within });
  say('saved ' + (await page.getAttribute('#config-outcome', 'data-outcome')));
  await page.waitForSelector('#reloads tr td .tag', { timeout: within });
  await shot(page, 'config-saved');

  // A broken edit: its error at its line, and Save refuses it.
  const saved = await page.inputValue('#config-text');
  await page.fill('#config-text', saved.replace(cfg.broken[0], cfg.broken[1]));
  await page.click('#config-validate');
  await page.waitForSelector('#config-errors li', { timeout: within });
  const lines = await page.$$eval('#editor .gutter .ln.err', (ls) => ls.map((l) => Number(l.dataset.line)));
  say('error ' + JSON.stringify({ lines, errors: await page.locator('#config-errors li').allTextContents() }));
  await shot(page, 'config-error');
  await page.click('#config-save');
  await page.waitForFunction(() => /Not saved/.test(document.getElementById('config-result').textContent), null, { timeout: within });
  say('refused ' + (await page.textContent('#config-result strong')));
  await page.click('#config-revert');
  await page.waitForFunction((want) => document.getElementById('config-text').value === want, saved, { timeout: within });
  say('reverted');

  // The config now lives in a folder the proxy cannot write: a banner
  // says so.
  fs.symlinkSync(cfg.roFile, cfg.link + '.new');
  fs.renameSync(cfg.link + '.new', cfg.link);
  await page.reload();
  await page.waitForSelector('#config-banner:not([hidden])', { timeout: within });
  say('read-only ' + (await page.textContent('#config-banner')));
  await shot(page, 'config-read-only');

  // The overview, once a few seconds of events have drawn its charts.
  await page.goto(cfg.url + '#/overview');
  await page.waitForFunction(() => {
    const line = document.querySelector('#chart-calls polyline');
    return line && line.getAttribute('points').split(' ').length >= 3;
  }, null, { timeout: within });
  say('overview ' + JSON.stringify({
    registrations: await page.textContent('#stat-registrations'),
    responses: await page.locator('#responses .class').allTextContents(),
  }));
  await shot(page, 'overview');

  // Unregister bob's device, after the confirmation.
  await page.goto(cfg.url + '#/registrations');
  await row.locator('button').click();
  await page.waitForSelector('#confirm[open]');
  await page.click('#confirm-ok');
  await page.waitForFunction(() => /No phone is registered/.test(document.getElementById('reg-rows').textContent), null, { timeout: within });
  say('unregistered ' + (await page.textContent('#reg-status')));
}

// cssString escapes a value for a CSS attribute selector in quotes.
function cssString(s) {
  return s.replace(/["\\]/g, '\\$&');
}

(async () => {
  const browser = await chromium.launch({
    executablePath: cfg.chromium,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  process.on('SIGTERM', () => browser.close().finally(() => process.exit(1)));
  let failed = false;
  let page;
  try {
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.setDefaultTimeout(within);
    page.on('console', (m) => {
      // A violation of the Content-Security-Policy fails the run: the
      // console must work with no inline script or style.
      if (/Content Security Policy/i.test(m.text())) failed = true;
      process.stderr.write('console: ' + m.text() + '\n');
    });
    page.on('pageerror', (e) => { failed = true; process.stderr.write('page error: ' + e + '\n'); });
    // A dialog is a script from SIP that ran (the caller's display name).
    page.on('dialog', (d) => { failed = true; process.stderr.write('dialog: ' + d.message() + '\n'); d.dismiss().catch(() => {}); });
    await run(page);
    say('done');
  } catch (err) {
    failed = true;
    process.stderr.write('console.js: ' + (err.stack || err) + '\n');
    if (page) await shot(page, 'failure').catch(() => {});
  } finally {
    await browser.close();
  }
  process.exit(failed ? 1 : 0);
})();
