// api.js talks to the console's JSON API (/console/api/) and its event
// stream. Every change carries the session's CSRF token; a lost session
// sends the browser back to the login page.

let csrf = null;

// ApiError is an answer other than 2xx: status is the HTTP status, body the
// decoded JSON ({"error": ...} or the operation's own answer).
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

function toLogin() {
  window.location.assign('login');
}

async function token() {
  if (csrf === null) csrf = (await get('api/session')).csrf;
  return csrf;
}

async function send(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') {
    headers['Content-Type'] = 'application/json';
    headers['X-CSRF-Token'] = await token();
  }
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  if (res.status === 401) {
    toLogin();
    throw new ApiError(401, { error: 'the session ended' });
  }
  let data = null;
  const text = await res.text();
  if (text) {
    try { data = JSON.parse(text); } catch { data = { error: text }; }
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

// get fetches a JSON resource; params become its query string.
export function get(path, params) {
  if (params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
    const qs = q.toString();
    if (qs) path += '?' + qs;
  }
  return send('GET', path);
}

// post sends body as JSON with the CSRF token.
export function post(path, body) {
  return send('POST', path, body);
}

// logout ends the session on the server and shows the login page.
export async function logout() {
  try {
    await fetch('logout', { method: 'POST', headers: { 'X-CSRF-Token': await token() }, credentials: 'same-origin' });
  } finally {
    toLogin();
  }
}

const listeners = new Map();
let source = null;

// on calls fn with the decoded data of every server-sent event of that
// name ("overview", "registrations", "calls"); it returns the unsubscribe.
export function on(event, fn) {
  connect();
  if (!listeners.has(event)) {
    listeners.set(event, new Set());
    source.addEventListener(event, (e) => {
      let data = null;
      try { data = JSON.parse(e.data); } catch { return; }
      for (const l of listeners.get(event)) l(data);
    });
  }
  listeners.get(event).add(fn);
  return () => listeners.get(event).delete(fn);
}

// onStatus calls fn(true|false) as the event stream connects and drops.
export function onStatus(fn) {
  connect();
  source.addEventListener('open', () => fn(true));
  source.addEventListener('error', () => {
    fn(false);
    // EventSource retries by itself; a 401 closes it for good.
    if (source.readyState === EventSource.CLOSED) get('api/session').catch(() => {});
  });
}

function connect() {
  if (!source) source = new EventSource('api/events');
}
