// editor.js is the config editor: a plain <textarea> over a highlighted
// copy of its text, with line numbers and error marks. The textarea keeps
// every editing feature of the browser (undo, selection, IME); its text is
// transparent, so the highlighted copy under it shows through.
import { h, replace } from './dom.js';
import { highlight } from './toml.js';

// Editor wraps the elements; onInput is called after each edit.
export class Editor {
  constructor(onInput) {
    this.gutter = h('div', { class: 'gutter', 'aria-hidden': 'true' });
    this.code = h('pre', { class: 'hl', 'aria-hidden': 'true' });
    this.area = h('textarea', { class: 'src', id: 'config-text', spellcheck: 'false', wrap: 'off', autocapitalize: 'off', autocomplete: 'off', 'aria-label': 'config.toml' });
    this.el = h('div', { class: 'editor', id: 'editor' }, this.gutter, h('div', { class: 'code' }, this.code, this.area));
    this.errors = new Map(); // line -> messages
    this.area.addEventListener('input', () => { this.render(); onInput(); });
    this.area.addEventListener('keydown', (e) => {
      // Tab indents rather than leaving the editor; Escape then Tab leaves.
      if (e.key === 'Tab' && !e.shiftKey && !this.escaped) {
        e.preventDefault();
        document.execCommand('insertText', false, '  ');
      }
      this.escaped = e.key === 'Escape';
    });
  }

  get value() { return this.area.value; }

  set value(text) {
    this.area.value = text;
    this.render();
  }

  // mark sets the errors shown: a list of {line, column, message}.
  mark(errors) {
    this.errors = new Map();
    for (const e of errors || []) {
      if (!e.line) continue;
      if (!this.errors.has(e.line)) this.errors.set(e.line, []);
      this.errors.get(e.line).push(e.message);
    }
    this.render();
  }

  // goto puts the caret at the start of line (1-based) and scrolls to it.
  goto(line, column) {
    const lines = this.area.value.split('\n');
    let pos = 0;
    for (let i = 0; i < line - 1 && i < lines.length; i++) pos += lines[i].length + 1;
    pos += Math.max(0, (column || 1) - 1);
    this.area.focus();
    this.area.setSelectionRange(pos, pos);
    this.gutter.children[line - 1]?.scrollIntoView({ block: 'center' });
  }

  render() {
    const text = this.area.value;
    const lines = highlight(text);
    replace(this.code, lines.map((tokens, i) => h('div', { class: this.errors.has(i + 1) ? 'line err-line' : 'line' },
      tokens.map(([cls, str]) => (cls ? h('span', { class: 'tok-' + cls }, str) : str)),
      '\n')));
    replace(this.gutter, lines.map((_, i) => {
      const errs = this.errors.get(i + 1);
      return h('div', { class: errs ? 'ln err' : 'ln', title: errs ? errs.join('\n') : null, 'data-line': i + 1 }, String(i + 1));
    }));
    // The textarea grows with its text so that the editor's box scrolls
    // the textarea, the highlighted copy and the line numbers together.
    const longest = Math.max(20, ...text.split('\n').map((l) => l.length));
    this.area.style.height = `calc(${lines.length} * var(--line) + 2 * var(--pad))`;
    this.area.style.width = `calc(${longest + 2}ch + 2 * var(--pad))`;
  }
}

// lineDiff returns a unified diff of two texts' lines with context lines
// around each change, as [kind, text] rows: kind is ' ', '-', '+' or '@'.
export function lineDiff(a, b, context = 3) {
  const x = a.split('\n'), y = b.split('\n');
  const n = x.length, m = y.length;
  // lcs[i][j]: length of the longest common subsequence of x[i:] and y[j:].
  const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] = x[i] === y[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const ops = [];
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) { ops.push([' ', x[i], i + 1, j + 1]); i++; j++; }
    else if (i < n && (j === m || lcs[i + 1][j] >= lcs[i][j + 1])) { ops.push(['-', x[i], i + 1, j + 1]); i++; }
    else { ops.push(['+', y[j], i + 1, j + 1]); j++; }
  }
  const keep = ops.map(() => false);
  ops.forEach((op, k) => {
    if (op[0] === ' ') return;
    for (let c = Math.max(0, k - context); c <= Math.min(ops.length - 1, k + context); c++) keep[c] = true;
  });
  const rows = [];
  let gap = true;
  ops.forEach((op, k) => {
    if (!keep[k]) { gap = true; return; }
    if (gap) rows.push(['@', `@@ line ${op[3]} @@`]);
    gap = false;
    rows.push([op[0], op[1]]);
  });
  return rows;
}
