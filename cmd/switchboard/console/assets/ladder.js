// ladder.js is one call's page: its SIP ladder as a sequence diagram, the
// way sngrep and Homer draw it (a lifeline per party, an arrow per message
// in time order, each fork's branch to its own callee), and, for the
// message clicked, its full text and each stage's decision.
import { get, on, ApiError } from './api.js';
import { h, s, replace, clock } from './dom.js';

const COL = 170; // pixels between lifelines
const ROW = 34; // pixels between messages
const TOP = 56; // room for the party names
const LEFT = 150; // room for the times

export function callDetail(view, callID) {
  const head = h('div', { class: 'call-head' });
  const diagram = h('div', { class: 'ladder-wrap' });
  const detail = h('aside', { class: 'msg-detail', id: 'msg-detail' }, h('p', { class: 'hint' }, 'Click a message to see its text and the stages\' decisions.'));
  replace(view,
    h('p', null, h('a', { href: '#/calls' }, '← Calls')),
    h('h1', null, 'Call ', h('code', { class: 'callid' }, callID)),
    head,
    h('div', { class: 'ladder-page' }, diagram, detail));

  let selected = -1;
  async function load() {
    let data;
    try {
      data = await get('api/calls/' + encodeURIComponent(callID));
    } catch (err) {
      const why = err instanceof ApiError && err.status === 404
        ? 'The recorder holds no message of this call: it keeps the last calls and every traced call, within its size limit.'
        : 'Could not load the call: ' + err.message;
      replace(diagram, h('p', { class: 'error' }, why));
      return;
    }
    summary(head, data.call || {});
    const msgs = data.messages || []; // in the call's order: the recorder keeps it
    replace(diagram, ladder(data.parties || [], msgs, (i) => {
      selected = i;
      for (const g of diagram.querySelectorAll('.msg')) g.classList.toggle('selected', Number(g.dataset.index) === i);
      showMessage(detail, msgs[i]);
    }));
    if (selected >= 0 && selected < msgs.length) diagram.querySelector(`.msg[data-index="${selected}"]`)?.classList.add('selected');
  }
  load();
  // A call in progress grows: each change of the calls reloads its ladder.
  return on('calls', () => load());
}

function summary(el, c) {
  const field = (k, v) => (v ? [h('dt', null, k), h('dd', null, v)] : null);
  replace(el, h('dl', { class: 'facts' },
    field('From', c.from), field('To', c.to), field('State', c.state),
    field('Outcome', c.outcome ? c.outcome + (c.code ? ` (${c.code})` : '') : ''),
    field('Start', c.start && new Date(c.start).toLocaleString([], { hour12: false })),
    field('Answered', c.answer && clock(c.answer)), field('Ended', c.end && clock(c.end))));
}

// ladder draws the diagram; pick(i) is called when message i is clicked.
function ladder(parties, msgs, pick) {
  const cols = parties.slice();
  const col = (name) => {
    let i = cols.indexOf(name);
    if (i < 0) i = cols.push(name) - 1;
    return i;
  };
  const arrows = msgs.map((m) => (m.direction === 'in'
    ? { from: col(m.src), to: col('proxy') }
    : { from: col('proxy'), to: col(m.dst) }));
  const width = LEFT + Math.max(cols.length, 2) * COL;
  const height = TOP + msgs.length * ROW + 20;
  const x = (i) => LEFT + COL / 2 + i * COL;
  const t0 = msgs.length ? new Date(msgs[0].time).getTime() : 0;

  const svg = s('svg', { class: 'ladder', id: 'ladder', width, height, viewBox: `0 0 ${width} ${height}`, role: 'list' });
  svg.appendChild(s('defs', null,
    ['req', 'r1', 'r2', 'r3', 'r4'].map((k) => s('marker', { id: 'head-' + k, viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 8, markerHeight: 8, orient: 'auto-start-reverse' },
      s('path', { d: 'M0,0 L10,5 L0,10 z', class: 'head ' + k })))));
  cols.forEach((name, i) => {
    svg.appendChild(s('g', { class: 'party' + (name === 'proxy' ? ' proxy' : '') },
      s('rect', { x: x(i) - COL / 2 + 10, y: 6, width: COL - 20, height: 26, rx: 4 }),
      s('text', { x: x(i), y: 24, 'text-anchor': 'middle' }, name === 'proxy' ? 'Switchboard' : name),
      s('line', { x1: x(i), y1: 32, x2: x(i), y2: height - 4, class: 'lifeline' })));
  });
  msgs.forEach((m, i) => {
    const { from, to } = arrows[i];
    const y = TOP + i * ROW + ROW / 2;
    const kind = kindOf(m.first_line);
    const self = from === to;
    const x1 = x(from), x2 = self ? x(from) + 40 : x(to);
    const line = self
      ? s('path', { d: `M${x1},${y - 8} h40 v16 h-36`, class: 'arrow ' + kind, 'marker-end': `url(#head-${kind})` })
      : s('line', { x1, y1: y, x2, y2: y, class: 'arrow ' + kind, 'marker-end': `url(#head-${kind})` });
    const dt = (new Date(m.time).getTime() - t0) / 1000;
    const g = s('g', { class: 'msg ' + kind, 'data-index': i, 'data-from': cols[from], 'data-to': cols[to], tabindex: 0, role: 'listitem', 'aria-label': m.first_line },
      s('title', null, `${m.first_line}\n${m.src} → ${m.dst} (${m.transport || ''})`),
      s('rect', { x: 0, y: y - ROW / 2, width, height: ROW, class: 'hit' }),
      s('text', { x: 6, y: y + 4, class: 'time' }, clock(m.time)),
      s('text', { x: LEFT - 8, y: y + 4, class: 'delta', 'text-anchor': 'end' }, i === 0 ? '' : '+' + dt.toFixed(3)),
      line,
      s('text', { x: (x1 + x2) / 2 + (self ? 30 : 0), y: y - 5, 'text-anchor': 'middle', class: 'label' }, label(m.first_line)));
    g.addEventListener('click', () => pick(i));
    g.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); pick(i); } });
    svg.appendChild(g);
  });
  if (!msgs.length) return h('p', { class: 'empty' }, 'No message recorded yet.');
  return svg;
}

// label shortens a first line: the method of a request, the code and
// reason of a response.
export function label(first) {
  first = first || '';
  if (first.startsWith('SIP/2.0 ')) return first.slice(8);
  return first.split(' ')[0];
}

function kindOf(first) {
  const m = /^SIP\/2\.0 ([1-6])/.exec(first || '');
  if (!m) return 'req';
  return m[1] === '1' ? 'r1' : m[1] === '2' ? 'r2' : m[1] === '3' ? 'r3' : 'r4';
}

function showMessage(el, m) {
  const decisions = m.decisions || [];
  replace(el,
    h('h2', null, m.first_line),
    h('dl', { class: 'facts' },
      h('dt', null, 'Time'), h('dd', null, new Date(m.time).toISOString()),
      h('dt', null, m.direction === 'in' ? 'Received from' : 'Sent to'), h('dd', { class: 'mono' }, m.direction === 'in' ? m.src : m.dst),
      h('dt', null, 'Path'), h('dd', { class: 'mono' }, `${m.src} → ${m.dst} over ${(m.transport || '').toUpperCase()}`)),
    h('h3', null, 'Stages'),
    decisions.length
      ? h('table', { class: 'grid decisions', id: 'decisions' },
        h('thead', null, h('tr', null, h('th', null, 'Stage'), h('th', null, 'Matched'), h('th', null, 'Verdict'))),
        h('tbody', null, decisions.map((d) => h('tr', { class: d.matched ? 'matched' : 'skipped' },
          h('td', null, d.stage), h('td', null, d.matched ? 'yes' : 'no'), h('td', null, d.verdict || '')))))
      : h('p', { class: 'hint' }, m.direction === 'in' ? 'No stage decision recorded for this message.' : 'Sent by the proxy: the decisions are on the message it relays or answers.'),
    h('h3', null, 'Message'),
    h('pre', { class: 'sip', id: 'msg-text' }, m.text || ''));
}
