// app.js is the console's single page: a hash route (#/overview,
// #/registrations, #/calls, #/calls/ID, #/config) picks the view, and each
// view returns a function that stops its timers and event listeners.
import { logout, onStatus } from './api.js';
import { replace, h } from './dom.js';
import { overview, collect } from './overview.js';
import { registrations } from './registrations.js';
import { calls } from './calls.js';
import { callDetail } from './ladder.js';
import { configView } from './config.js';

const view = document.getElementById('view');
let stop = null;

function route() {
  const hash = window.location.hash.replace(/^#\/?/, '').split('?')[0] || 'overview';
  const [name, ...rest] = hash.split('/');
  if (stop) stop();
  stop = null;
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', a.dataset.route === name);
  }
  replace(view);
  const views = {
    overview: () => overview(view),
    registrations: () => registrations(view),
    calls: () => (rest.length ? callDetail(view, decodeURIComponent(rest.join('/'))) : calls(view)),
    config: () => configView(view),
  };
  const show = views[name];
  if (!show) {
    replace(view, h('p', { class: 'error' }, 'No page ', h('code', null, '#/' + hash), '.'));
    return;
  }
  stop = show() || null;
}

const live = document.getElementById('live');
onStatus((up) => {
  live.textContent = up ? 'live' : 'offline';
  live.classList.toggle('off', !up);
});
document.getElementById('logout').addEventListener('click', logout);
collect();
window.addEventListener('hashchange', route);
route();
