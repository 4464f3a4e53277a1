// dom.js builds the page's elements. Every string becomes a text node, so a
// value that came from SIP (a display name, a user agent) is never parsed
// as HTML.

const SVG = 'http://www.w3.org/2000/svg';

// h returns a new element: attrs sets attributes (on* keys add listeners),
// children are nodes or strings (text), null and false are skipped.
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

// s is h for SVG elements.
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG, tag), attrs, children);
}

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// replace empties el and appends children.
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// clock formats an RFC 3339 time as the local time of day, to the millisecond.
export function clock(t) {
  if (!t) return '';
  const d = new Date(t);
  if (isNaN(d)) return String(t);
  return d.toLocaleTimeString([], { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0');
}

// duration formats seconds as 1h02m03s, 2m05s or 7s.
export function duration(sec) {
  sec = Math.max(0, Math.round(sec));
  const hh = Math.floor(sec / 3600), mm = Math.floor(sec / 60) % 60, ss = sec % 60;
  if (hh) return `${hh}h${String(mm).padStart(2, '0')}m${String(ss).padStart(2, '0')}s`;
  if (mm) return `${mm}m${String(ss).padStart(2, '0')}s`;
  return `${ss}s`;
}
