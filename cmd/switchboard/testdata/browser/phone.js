// phone.js is the browser phone of TestBrowserPhone (cmd/switchboard): JsSIP
// in headless Chromium, driven by playwright-core. With the settings of
// PHONE_CONFIG (JSON) it registers over WSS, calls cfg.callee and hangs up
// once the call is up, then answers one call and waits for the caller's BYE.
// It prints one line per step on stdout ("registered", "call1 confirmed",
// "waiting", ...) for the Go test to follow, and exits 0 when all went as
// planned, 1 otherwise.
'use strict';

const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const cfg = JSON.parse(process.env.PHONE_CONFIG || '{}');

// bundle returns JsSIP and the modules it requires as one script for the
// page, defining window.JsSIP: the npm package ships CommonJS sources only.
function bundle() {
  const root = path.join(__dirname, 'node_modules');
  const modules = [];
  const ids = new Map();
  const resolveFile = (p) => {
    for (const c of [p, p + '.js', path.join(p, 'index.js')]) {
      if (fs.existsSync(c) && fs.statSync(c).isFile()) return c;
    }
    throw new Error('bundle: cannot resolve ' + p);
  };
  const resolvePackage = (name) => {
    const dir = path.join(root, name);
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
    const entry = typeof pkg.browser === 'string' ? pkg.browser : pkg.main || 'index.js';
    return resolveFile(path.join(dir, entry));
  };
  const add = (file) => {
    if (ids.has(file)) return ids.get(file);
    const id = modules.length;
    ids.set(file, id);
    modules.push(null);
    let src = fs.readFileSync(file, 'utf8');
    const deps = {};
    src.replace(/require\(\s*['"]([^'"]+)['"]\s*\)/g, (m, name) => {
      const dep = name.startsWith('.') ? resolveFile(path.resolve(path.dirname(file), name)) : resolvePackage(name);
      deps[name] = add(dep);
      return m;
    });
    if (file.endsWith('.json')) src = 'module.exports = ' + src;
    modules[id] = `[function (require, module, exports) {\n${src}\n}, ${JSON.stringify(deps)}]`;
    return id;
  };
  add(resolvePackage('jssip'));
  return `(function () {
  var defs = [${modules.join(',\n')}];
  var cache = {};
  function load(id) {
    if (cache[id]) return cache[id].exports;
    var module = cache[id] = { exports: {} };
    defs[id][0](function (name) { return load(defs[id][1][name]); }, module, module.exports);
    return module.exports;
  }
  window.JsSIP = load(0);
})();`;
}

// phone runs in the page: the whole life of the JsSIP phone.
async function phone(cfg) {
  const report = window.report;
  const ua = new JsSIP.UA({
    sockets: [new JsSIP.WebSocketInterface(cfg.wss)],
    uri: cfg.uri,
    register: true,
    session_timers: false,
  });
  const options = { mediaConstraints: { audio: true, video: false }, pcConfig: { iceServers: [] } };
  const once = (target, ok, bad, within, what) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no ' + what + ' within ' + within + ' ms')), within);
    target.on(ok, (e) => { clearTimeout(timer); resolve(e); });
    if (bad) target.on(bad, (e) => { clearTimeout(timer); reject(new Error(what + ': ' + bad + ': ' + (e.cause || ''))); });
  });

  const registered = once(ua, 'registered', 'registrationFailed', cfg.within, 'registration');
  ua.start();
  await registered;
  report('registered');

  // Call 1: the browser calls and, once the call is up, hangs up.
  const call1 = ua.call(cfg.callee, options);
  const confirmed1 = once(call1, 'confirmed', 'failed', cfg.within, 'answer to call 1');
  const ended1 = once(call1, 'ended', 'failed', cfg.within, 'end of call 1');
  await confirmed1;
  report('call1 confirmed');
  call1.terminate();
  const e1 = await ended1;
  report('call1 ended ' + e1.originator);

  // Call 2: the browser is called, answers, and the caller hangs up.
  const incoming = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no call 2 within ' + cfg.within + ' ms')), cfg.within);
    ua.on('newRTCSession', (e) => {
      if (e.originator !== 'remote') return;
      clearTimeout(timer);
      resolve(e);
    });
  });
  report('waiting');
  const e2 = await incoming;
  for (const rr of e2.request.getHeaders('Record-Route')) report('call2 record-route ' + rr);
  const call2 = e2.session;
  const confirmed2 = once(call2, 'confirmed', 'failed', cfg.within, 'ACK of call 2');
  const ended2 = once(call2, 'ended', 'failed', cfg.within, 'BYE of call 2');
  call2.answer(options);
  await confirmed2;
  report('call2 confirmed');
  const e3 = await ended2;
  report('call2 ended ' + e3.originator + ' ' + (e3.message ? e3.message.method : ''));

  const unregistered = once(ua, 'unregistered', null, cfg.within, 'unregistration');
  ua.unregister();
  await unregistered;
  report('unregistered');
  ua.stop();
}

async function main() {
  const browser = await chromium.launch({
    executablePath: cfg.chromium,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
      // The page's made-up origin counts as public, and Chromium blocks a
      // public page's connections to loopback (Local Network Access); a
      // real proxy is on a public address.
      '--disable-features=LocalNetworkAccessChecks',
      // Trust the test's certificate, and only it, by its public key.
      '--ignore-certificate-errors-spki-list=' + cfg.spki,
    ],
  });
  try {
    const page = await browser.newPage();
    page.on('console', (m) => process.stderr.write('console: ' + m.text() + '\n'));
    page.on('pageerror', (e) => process.stderr.write('page error: ' + e + '\n'));
    await page.exposeFunction('report', (line) => process.stdout.write(line + '\n'));
    // The page's origin is cfg.origin (an https page, so a secure context
    // for getUserMedia), served here rather than by any server.
    await page.route(cfg.origin + '/**', (route) => route.fulfill({
      contentType: 'text/html',
      body: '<!doctype html><title>phone</title>',
    }));
    await page.goto(cfg.origin + '/');
    await page.addScriptTag({ content: bundle() });
    await page.evaluate(phone, cfg);
  } finally {
    await browser.close();
  }
}

main().then(
  () => process.exit(0),
  (err) => { process.stdout.write('error ' + String(err && err.message || err).replace(/\n/g, ' ') + '\n'); process.exit(1); },
);
