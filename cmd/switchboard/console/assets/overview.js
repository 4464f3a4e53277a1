// overview.js is the Overview page: the numbers of the proxy right now and
// a minute of history as small charts, all from the `overview` events the
// server pushes every second (no polling).
import { get, on } from './api.js';
import { h, s, replace } from './dom.js';

const HISTORY = 60; // samples kept, one a second
const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', '6xx'];

// The history is collected from the app's start, whatever page shows, so
// that the Overview opens on the last minute rather than an empty chart.
const history = [];
const watchers = new Set();

// collect starts keeping the `overview` events; app.js calls it once.
export function collect() {
  const add = (o) => {
    const prev = history.length ? history[history.length - 1] : null;
    const responses = { ...zero(), ...o.responses };
    const rate = {};
    for (const c of CLASSES) rate[c] = prev ? Math.max(0, responses[c] - prev.responses[c]) : 0;
    history.push({ ...o, responses, rate });
    if (history.length > HISTORY) history.shift();
    for (const w of watchers) w(o);
  };
  // The first numbers come from the API, so that the page is not blank
  // until the next event.
  get('api/overview').then(add).catch(() => {});
  on('overview', add);
}

export function overview(view) {
  const cards = {
    calls: stat('Calls in progress', 'stat-calls'),
    cps: stat('Calls per second', 'stat-cps'),
    regs: stat('Registrations', 'stat-registrations'),
    aors: stat('Addresses of record', 'stat-aors'),
  };
  const charts = {
    calls: chart('Calls in progress', 'chart-calls'),
    cps: chart('Calls per second', 'chart-cps'),
    regs: chart('Registrations', 'chart-registrations'),
  };
  const classes = h('div', { class: 'classes', id: 'responses' });
  const rates = chart('Responses per second by class', 'chart-responses', true);
  replace(view,
    h('h1', null, 'Overview'),
    h('section', { class: 'stats' }, Object.values(cards).map((c) => c.el)),
    h('section', { class: 'charts' }, Object.values(charts).map((c) => c.el), rates.el),
    h('h2', null, 'Responses by class'),
    classes,
  );

  function show(o) {
    cards.calls.set(o.calls_in_progress);
    cards.cps.set(Number(o.calls_per_second || 0).toFixed(1));
    cards.regs.set(o.registrations);
    cards.aors.set(o.aors);
    charts.calls.draw([history.map((x) => x.calls_in_progress)]);
    charts.cps.draw([history.map((x) => x.calls_per_second)]);
    charts.regs.draw([history.map((x) => x.registrations)]);
    rates.draw(CLASSES.map((c) => history.map((x) => x.rate[c])));
    replace(classes, CLASSES.map((c) =>
      h('div', { class: 'class c' + c[0] }, h('span', { class: 'label' }, c), h('span', { class: 'value' }, String(o.responses?.[c] ?? 0)))));
  }

  if (history.length) show(history[history.length - 1]);
  watchers.add(show);
  return () => watchers.delete(show);
}

function zero() {
  return Object.fromEntries(CLASSES.map((c) => [c, 0]));
}

function stat(label, id) {
  const value = h('span', { class: 'value', id }, '–');
  return {
    el: h('div', { class: 'card stat' }, h('span', { class: 'label' }, label), value),
    set: (v) => { value.textContent = String(v ?? '–'); },
  };
}

// chart is an SVG line chart of one or more series over the history; with
// legend, series i is drawn in the colour of response class i.
function chart(title, id, legend) {
  const W = 300, H = 80;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', id, role: 'img', 'aria-label': title });
  const max = h('span', { class: 'max' });
  const el = h('figure', { class: 'card' },
    h('figcaption', null, title, ' ', max),
    svg,
    legend ? h('div', { class: 'legend' }, CLASSES.map((c) => h('span', { class: 'c' + c[0] }, c))) : null);
  return {
    el,
    draw(series) {
      const top = Math.max(1, ...series.flat());
      max.textContent = `(max ${Math.round(top * 10) / 10})`;
      replace(svg, s('line', { x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5, class: 'axis' }),
        series.map((data, i) => {
          const pts = data.map((v, j) => {
            const x = W - (data.length - 1 - j) * (W / (HISTORY - 1));
            const y = H - 2 - (v / top) * (H - 6);
            return `${x.toFixed(1)},${y.toFixed(1)}`;
          });
          return s('polyline', { points: pts.join(' '), class: 'series s' + (legend ? CLASSES[i][0] : '0') });
        }));
    },
  };
}
