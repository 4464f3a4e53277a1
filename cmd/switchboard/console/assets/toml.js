// toml.js highlights TOML: it splits the text into lines of tokens, each a
// [class, text] pair, that the config editor draws as spans. It knows the
// TOML that Switchboard's config uses (tables, arrays of tables, keys,
// strings of the four kinds, numbers, dates, booleans, arrays, inline
// tables, comments) and never fails: text it does not know stays plain.

const PATTERNS = [
  ['comment', /^#.*/],
  ['string', /^"""[\s\S]*?(?:"""|$)/],
  ['string', /^'''[\s\S]*?(?:'''|$)/],
  ['string', /^"(?:[^"\\\n]|\\.)*(?:"|$)/],
  ['string', /^'[^'\n]*(?:'|$)/],
  ['date', /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?/],
  ['number', /^[+-]?(?:0x[0-9a-fA-F_]+|0o[0-7_]+|0b[01_]+|inf|nan|\d[\d_]*(?:\.\d[\d_]*)?(?:[eE][+-]?\d+)?)\b/],
  ['bool', /^(?:true|false)\b/],
  ['punct', /^[[\]{},=.]/],
  ['space', /^[ \t]+/],
];

// highlight returns one array of tokens per line of text.
export function highlight(text) {
  const lines = [[]];
  const push = (cls, str) => {
    const parts = str.split('\n');
    parts.forEach((p, i) => {
      if (i > 0) lines.push([]);
      if (p) lines[lines.length - 1].push([cls, p]);
    });
  };
  let rest = text;
  let lineStart = true; // at the start of a line: a key or a table header may begin
  let inValue = 0; // depth of [ and { inside a value
  while (rest.length) {
    if (rest[0] === '\n') {
      push('', '\n');
      rest = rest.slice(1);
      if (inValue === 0) lineStart = true;
      continue;
    }
    let m;
    if (lineStart && (m = /^[ \t]*(\[\[?)([^\]\n#]*)(\]\]?)/.exec(rest))) {
      push('punct', m[0].slice(0, m[0].length - m[1].length - m[2].length - m[3].length) + m[1]);
      push('table', m[2]);
      push('punct', m[3]);
      rest = rest.slice(m[0].length);
      lineStart = false;
      continue;
    }
    if ((lineStart || inValue > 0 && /^[ \t]*[A-Za-z0-9_"'-][^=\n,{}[\]]*=/.test(rest) && prevIsOpenOrComma(lines))
      && (m = /^([ \t]*)((?:[A-Za-z0-9_-]+|"(?:[^"\\\n]|\\.)*"|'[^'\n]*')(?:[ \t]*\.[ \t]*(?:[A-Za-z0-9_-]+|"(?:[^"\\\n]|\\.)*"|'[^'\n]*'))*)([ \t]*=)/.exec(rest))) {
      push('', m[1]);
      push('key', m[2]);
      push('punct', m[3]);
      rest = rest.slice(m[0].length);
      lineStart = false;
      continue;
    }
    lineStart = false;
    let hit = false;
    for (const [cls, re] of PATTERNS) {
      if ((m = re.exec(rest))) {
        if (cls === 'punct') {
          if (m[0] === '[' || m[0] === '{') inValue++;
          if ((m[0] === ']' || m[0] === '}') && inValue > 0) inValue--;
        }
        push(cls === 'space' ? '' : cls, m[0]);
        rest = rest.slice(m[0].length);
        hit = true;
        break;
      }
    }
    if (!hit) {
      // Text TOML does not allow here (a typo, a bare word): shown plain.
      m = /^[^\s#"'[\]{},=]+|^./.exec(rest);
      push('', m[0]);
      rest = rest.slice(m[0].length);
    }
  }
  return lines;
}

// prevIsOpenOrComma tells whether the last token so far opens an inline
// table or separates its entries, where a key may follow.
function prevIsOpenOrComma(lines) {
  for (let i = lines.length - 1; i >= 0; i--) {
    for (let j = lines[i].length - 1; j >= 0; j--) {
      const [cls, str] = lines[i][j];
      if (cls === '' && !str.trim()) continue;
      return cls === 'punct' && (str === '{' || str === ',');
    }
  }
  return false;
}
