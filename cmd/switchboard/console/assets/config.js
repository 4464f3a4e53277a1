// config.js is the Config page: the running config.toml in the editor,
// Validate (the errors of `switchboard validate`, at their lines), Save
// (with the hash the text was loaded at, so that a change on disk is not
// overwritten), the diff of the edit and of the file against the running
// config, and the history of reloads.
import { get, post, ApiError } from './api.js';
import { h, replace } from './dom.js';
import { Editor, lineDiff } from './editor.js';

export function configView(view) {
  let loaded = null; // the answer of GET api/config the edit started from
  const path = h('code', { id: 'config-path' });
  const banner = h('div', { class: 'banner', id: 'config-banner', hidden: true });
  const result = h('div', { class: 'result', id: 'config-result', role: 'status' });
  const editor = new Editor(() => { changed(); scheduleValidate(); });
  const validateBtn = h('button', { type: 'button', id: 'config-validate', onclick: () => validate(true) }, 'Validate');
  const saveBtn = h('button', { type: 'button', id: 'config-save', class: 'primary', onclick: save }, 'Save');
  const revertBtn = h('button', { type: 'button', id: 'config-revert', onclick: () => load(true) }, 'Revert');
  const dirty = h('span', { class: 'dirty', id: 'config-dirty' });
  const diffMine = h('div', { class: 'diff', id: 'diff-edit' });
  const diffRunning = h('div', { class: 'diff', id: 'diff-running' });
  const reloads = h('tbody', { id: 'reloads' });

  replace(view,
    h('h1', null, 'Config'),
    h('p', null, 'File ', path, ' ', dirty),
    banner,
    h('div', { class: 'toolbar' }, validateBtn, saveBtn, revertBtn),
    result,
    editor.el,
    h('div', { class: 'two' },
      h('section', null, h('h2', null, 'Your changes'), diffMine),
      h('section', null, h('h2', null, 'File against the running config'), diffRunning)),
    h('h2', null, 'Reloads'),
    h('table', { class: 'grid', id: 'reload-history' },
      h('thead', null, h('tr', null, ['Time', 'Hash', 'Outcome', 'Cause', 'Session'].map((t) => h('th', null, t)))),
      reloads));

  function changed() {
    const edited = loaded && editor.value !== loaded.text;
    dirty.textContent = edited ? 'edited, not saved' : '';
    saveBtn.disabled = !loaded || !loaded.writable || !edited;
    showDiff(diffMine, loaded ? lineDiff(loaded.text, editor.value) : [], 'No change to the file.');
  }

  function say(kind, ...children) {
    result.className = 'result ' + kind;
    replace(result, children);
  }

  function errorList(errors) {
    return h('ul', { class: 'errors', id: 'config-errors' }, (errors || []).map((e) => h('li', null,
      e.line ? h('a', { href: '#/config', class: 'at', onclick: (ev) => { ev.preventDefault(); editor.goto(e.line, e.column); } },
        `line ${e.line}` + (e.column ? `, column ${e.column}` : '')) : null,
      e.line ? ': ' : '', e.message)));
  }

  async function load(discard) {
    try {
      loaded = await get('api/config');
    } catch (err) {
      say('bad', 'Could not load the config: ' + err.message);
      return;
    }
    path.textContent = loaded.path;
    if (discard || !editor.value) editor.value = loaded.text;
    editor.mark([]);
    if (loaded.writable) {
      banner.hidden = true;
    } else {
      banner.hidden = false;
      replace(banner, h('strong', null, 'Read-only. '), (loaded.read_only || 'The proxy cannot write the config file').replace(/\.?$/, '.'),
        ' You can edit and validate here; saving needs write access to the folder (docs/console.md).');
    }
    changed();
    refreshSide();
  }

  async function refreshSide() {
    try {
      const d = await get('api/config/diff');
      showDiff(diffRunning, (d.diff || '').split('\n').filter((l) => l !== '').map((l) => [l.startsWith('@@') ? '@' : l[0] || ' ', l.slice(l.startsWith('@@') ? 0 : 1)]),
        'The running config is the file (' + short(d.running_hash) + ').');
    } catch (err) {
      replace(diffRunning, h('p', { class: 'error' }, err.message));
    }
    try {
      const list = await get('api/reloads');
      replace(reloads, (list || []).length ? list.slice().reverse().map((r) => h('tr', null,
        h('td', { class: 'mono' }, new Date(r.time).toLocaleString([], { hour12: false })),
        h('td', { class: 'mono', title: r.hash }, short(r.hash)),
        h('td', null, h('span', { class: 'tag ' + (r.outcome === 'applied' ? 'ok' : r.outcome === 'failed' ? 'bad' : '') }, r.outcome)),
        h('td', null, r.cause || ''),
        h('td', { class: 'mono' }, r.session || ''))) : h('tr', null, h('td', { colspan: 5, class: 'empty' }, 'No reload since the start.')));
    } catch (err) {
      replace(reloads, h('tr', null, h('td', { colspan: 5, class: 'error' }, err.message)));
    }
  }

  let seq = 0;
  async function validate(explicit) {
    const mine = ++seq;
    let res;
    try {
      res = await post('api/config/validate', { text: editor.value });
    } catch (err) {
      if (explicit) say('bad', 'Validate failed: ' + err.message);
      return null;
    }
    if (mine !== seq) return null;
    editor.mark(res.errors);
    if (res.ok) {
      if (explicit) say('ok', 'The config is valid.');
      else if (result.classList.contains('invalid')) say('', '');
    } else {
      say('bad invalid', h('strong', null, `${res.errors.length} error${res.errors.length === 1 ? '' : 's'}:`), errorList(res.errors));
    }
    return res;
  }

  let timer = null;
  function scheduleValidate() {
    clearTimeout(timer);
    timer = setTimeout(() => validate(false), 700);
  }

  async function save() {
    clearTimeout(timer);
    seq++; // an idle validation still on its way must not overwrite the answer
    saveBtn.disabled = true;
    let res;
    try {
      res = await post('api/config/save', { text: editor.value, hash: loaded.hash });
    } catch (err) {
      saveBtn.disabled = false;
      if (!(err instanceof ApiError)) { say('bad', 'Save failed: ' + err.message); return; }
      if (err.status === 409) {
        say('bad conflict', h('strong', null, 'Changed on disk. '),
          'The file changed since you loaded it; nothing was saved. ',
          h('button', { type: 'button', id: 'config-load-disk', onclick: () => load(true) }, 'Load the file from disk (drops your edit)'));
      } else if (err.status === 422) {
        editor.mark(err.body?.errors);
        say('bad invalid', h('strong', null, 'Not saved: the config does not validate.'), errorList(err.body?.errors));
      } else if (err.status === 403) {
        say('bad', h('strong', null, 'Not saved. '), err.message);
      } else {
        say('bad', 'Save failed: ' + err.message);
      }
      return;
    }
    const restart = res.needs_restart || [];
    const outcome = {
      applied: 'Saved and applied.',
      unchanged: 'Saved; the running config did not change.',
      failed: 'Saved, but the reload failed: the previous config keeps running.',
    }[res.outcome] || `Saved (${res.outcome}).`;
    say(res.outcome === 'failed' ? 'bad' : 'ok',
      h('strong', { id: 'config-outcome', 'data-outcome': res.outcome }, outcome),
      restart.length ? h('p', null, 'Needs a restart to take effect: ', restart.map((k) => h('span', { class: 'tag warn restart' }, k))) : null,
      res.errors?.length ? errorList(res.errors) : null);
    editor.mark(res.errors);
    await load(true);
  }

  load(true);
  return () => clearTimeout(timer);
}

function short(hash) {
  return hash ? String(hash).slice(0, 12) : '';
}

function showDiff(el, rows, none) {
  if (!rows.length) {
    replace(el, h('p', { class: 'hint' }, none));
    return;
  }
  replace(el, h('pre', null, rows.map(([k, text]) => h('div', { class: { '+': 'add', '-': 'del', '@': 'hunk' }[k] || 'ctx' }, k === '@' ? text : k + ' ' + text))));
}
