// registrations.js is the Registrations page: every AOR with its devices,
// a search, expiries that count down each second, and Unregister, which
// asks for confirmation and runs the same admin operation as `ctl`.
import { get, post, on } from './api.js';
import { h, replace, duration } from './dom.js';
import { confirmDialog } from './confirm.js';

export function registrations(view) {
  const search = h('input', { type: 'search', id: 'reg-search', placeholder: 'Search AOR, contact, address, user agent', 'aria-label': 'Search' });
  const status = h('p', { class: 'status', id: 'reg-status' });
  const body = h('tbody', { id: 'reg-rows' });
  replace(view,
    h('h1', null, 'Registrations'),
    h('div', { class: 'toolbar' }, search, status),
    h('table', { class: 'grid', id: 'registrations' },
      h('thead', null, h('tr', null,
        ['AOR', 'Contact', 'Transport', 'Source', 'NAT', 'User agent', 'Expires in', ''].map((t) => h('th', null, t)))),
      body));

  let countdowns = [];
  let seq = 0;
  async function load() {
    const mine = ++seq;
    let list;
    try {
      list = await get('api/registrations', { q: search.value.trim() });
    } catch (err) {
      status.textContent = 'Could not load the registrations: ' + err.message;
      return;
    }
    if (mine !== seq) return; // a newer search answered first
    countdowns = [];
    const rows = [];
    let devices = 0;
    for (const reg of list || []) {
      const bindings = reg.bindings || [];
      bindings.forEach((b, i) => {
        devices++;
        const left = h('td', { class: 'num expires' });
        const deadline = b.expires ? new Date(b.expires).getTime() : Date.now() + (b.expires_in || 0) * 1000;
        countdowns.push({ td: left, deadline });
        rows.push(h('tr', { class: i === 0 ? 'aor-first' : null, 'data-aor': reg.aor, 'data-contact': b.contact },
          i === 0 ? h('td', { rowspan: bindings.length, class: 'aor' }, reg.aor) : null,
          h('td', { class: 'mono' }, b.contact),
          h('td', null, (b.transport || '').toUpperCase()),
          h('td', { class: 'mono' }, b.received || ''),
          h('td', null, b.nat ? h('span', { class: 'tag warn' }, 'NAT') : 'no'),
          h('td', null, b.user_agent || ''),
          left,
          h('td', null, h('button', { type: 'button', class: 'danger small', onclick: () => unregister(reg.aor, b.contact) }, 'Unregister'))));
      });
    }
    if (!rows.length) rows.push(h('tr', null, h('td', { colspan: 8, class: 'empty' }, search.value ? 'No registration matches.' : 'No phone is registered.')));
    replace(body, rows);
    status.textContent = `${(list || []).length} AOR${(list || []).length === 1 ? "" : "s"}, ${devices} device${devices === 1 ? '' : 's'}`;
    tick();
  }

  function tick() {
    const now = Date.now();
    for (const c of countdowns) {
      const left = (c.deadline - now) / 1000;
      c.td.textContent = left > 0 ? duration(left) : 'expired';
      c.td.classList.toggle('soon', left < 30);
    }
  }

  async function unregister(aor, contact) {
    const ok = await confirmDialog('Unregister this device?',
      [h('p', null, 'AOR ', h('code', null, aor)), h('p', null, 'Contact ', h('code', null, contact)),
        h('p', null, 'Calls stop reaching it until it registers again.')], 'Unregister');
    if (!ok) return;
    try {
      const res = await post('api/unregister', { aor, contact });
      status.textContent = `Removed ${res.removed} binding${res.removed === 1 ? '' : 's'} of ${res.aor}.`;
    } catch (err) {
      status.textContent = 'Unregister failed: ' + err.message;
    }
    load();
  }

  let timer = null;
  search.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(load, 200);
  });
  const every = setInterval(tick, 1000);
  const off = on('registrations', () => load());
  load();
  return () => {
    clearInterval(every);
    clearTimeout(timer);
    off();
  };
}
