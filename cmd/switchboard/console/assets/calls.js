// calls.js is the Calls page: the calls in progress and the recent ones
// (the CDRs the proxy keeps), filtered by user, time and outcome. A row
// opens the call's ladder.
import { get, on } from './api.js';
import { h, replace, duration } from './dom.js';

const OUTCOMES = ['', 'answered', 'busy', 'cancelled', 'unanswered', 'redirected', 'failed'];

// The filter is kept in the hash's query (#/calls?user=alice), so that
// the back button returns to the same list.
export function calls(view) {
  const params = new URLSearchParams(window.location.hash.split('?')[1] || '');
  const user = h('input', { type: 'search', id: 'calls-user', placeholder: 'user (From or To)', value: params.get('user') || '' });
  const outcome = h('select', { id: 'calls-outcome', 'aria-label': 'Outcome' },
    OUTCOMES.map((o) => h('option', { value: o, selected: o === (params.get('outcome') || '') }, o || 'any outcome')));
  const since = h('input', { type: 'datetime-local', id: 'calls-since', 'aria-label': 'Since', value: params.get('since') || '' });
  const status = h('p', { class: 'status' });
  const active = h('tbody', { id: 'calls-active' });
  const recent = h('tbody', { id: 'calls-recent' });
  replace(view,
    h('h1', null, 'Calls'),
    h('form', { class: 'toolbar', id: 'calls-filter', onsubmit: (e) => { e.preventDefault(); load(); } },
      h('label', null, 'User ', user), h('label', null, 'Outcome ', outcome), h('label', null, 'Since ', since),
      h('button', { type: 'submit' }, 'Filter'), status),
    h('h2', null, 'In progress'),
    table(active, true),
    h('h2', null, 'Recent'),
    table(recent, false));

  let seq = 0;
  async function load() {
    const mine = ++seq;
    const q = { user: user.value.trim(), outcome: outcome.value, since: since.value ? new Date(since.value).toISOString() : '' };
    let res;
    try {
      res = await get('api/calls', q);
    } catch (err) {
      status.textContent = 'Could not load the calls: ' + err.message;
      return;
    }
    if (mine !== seq) return;
    const kept = new URLSearchParams(Object.entries({ user: user.value.trim(), outcome: outcome.value, since: since.value }).filter(([, v]) => v));
    window.history.replaceState(null, '', '#/calls' + (kept.size ? '?' + kept : ''));
    rows(active, res.active || [], true);
    rows(recent, res.recent || [], false);
    status.textContent = `${(res.active || []).length} in progress, ${(res.recent || []).length} recent`;
  }

  for (const el of [outcome, since]) el.addEventListener('change', load);
  let timer = null;
  user.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(load, 250); });
  // The durations of calls in progress grow; the list itself changes on
  // the server's `calls` event.
  const every = setInterval(() => {
    for (const td of active.querySelectorAll('td.since')) td.textContent = duration((Date.now() - Number(td.dataset.t)) / 1000);
  }, 1000);
  const off = on('calls', () => load());
  load();
  return () => { clearInterval(every); clearTimeout(timer); off(); };
}

function table(body, live) {
  const heads = live ? ['Start', 'From', 'To', 'State', 'Duration'] : ['Start', 'From', 'To', 'Outcome', 'Code', 'Duration', 'End'];
  return h('table', { class: 'grid calls' }, h('thead', null, h('tr', null, heads.map((t) => h('th', null, t)))), body);
}

function rows(body, list, live) {
  if (!list.length) {
    replace(body, h('tr', null, h('td', { colspan: live ? 5 : 7, class: 'empty' }, live ? 'No call in progress.' : 'No recent call.')));
    return;
  }
  replace(body, list.map((c) => {
    const open = () => { window.location.hash = '#/calls/' + encodeURIComponent(c.call_id); };
    const start = c.start ? new Date(c.start) : null;
    const cells = [
      h('td', { class: 'mono' }, start ? start.toLocaleString([], { hour12: false }) : ''),
      h('td', null, c.from || ''),
      h('td', null, c.to || ''),
    ];
    if (live) {
      cells.push(h('td', null, h('span', { class: 'tag' }, c.state || '')),
        h('td', { class: 'num since', 'data-t': start ? start.getTime() : Date.now() }, start ? duration((Date.now() - start) / 1000) : ''));
    } else {
      const talk = c.answer && c.end ? (new Date(c.end) - new Date(c.answer)) / 1000 : 0;
      cells.push(h('td', null, h('span', { class: 'tag ' + outcomeClass(c.outcome) }, c.outcome || '')),
        h('td', { class: 'num' }, c.code ? String(c.code) : ''),
        h('td', { class: 'num' }, c.answer ? duration(talk) : ''),
        h('td', { class: 'mono' }, c.end ? new Date(c.end).toLocaleTimeString([], { hour12: false }) : ''));
    }
    return h('tr', {
      class: 'link', tabindex: 0, 'data-call-id': c.call_id, title: c.call_id,
      onclick: open, onkeydown: (e) => { if (e.key === 'Enter') open(); },
    }, cells);
  }));
}

function outcomeClass(o) {
  return o === 'answered' ? 'ok' : o === 'cancelled' || o === 'busy' ? 'warn' : 'bad';
}
