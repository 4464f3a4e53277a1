// Tests of assets/toml.js, the config editor's highlighter: table-driven,
// each case a line of TOML and the tokens it must give.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { highlight } from '../../assets/toml.js';

const cases = [
  ['[server]', [['punct', '['], ['table', 'server'], ['punct', ']']]],
  ['[[stage]]', [['punct', '[['], ['table', 'stage'], ['punct', ']]']]],
  ['use = "rewrite"', [['key', 'use'], ['punct', ' ='], ['', ' '], ['string', '"rewrite"']]],
  ["when = 'response.code == 200' # rule", [['key', 'when'], ['punct', ' ='], ['', ' '], ['string', "'response.code == 200'"], ['', ' '], ['comment', '# rule']]],
  ['nat = false', [['key', 'nat'], ['punct', ' ='], ['', ' '], ['bool', 'false']]],
  ['port = 5060', [['key', 'port'], ['punct', ' ='], ['', ' '], ['number', '5060']]],
  ['at = 2026-01-02T03:04:05Z', [['key', 'at'], ['punct', ' ='], ['', ' '], ['date', '2026-01-02T03:04:05Z']]],
  ['a.b = 1', [['key', 'a.b'], ['punct', ' ='], ['', ' '], ['number', '1']]],
  ['x = { y = 1 }', [['key', 'x'], ['punct', ' ='], ['', ' '], ['punct', '{'], ['', ' '], ['key', 'y'], ['punct', ' ='], ['', ' '], ['number', '1'], ['', ' '], ['punct', '}']]],
  ['# only a comment', [['comment', '# only a comment']]],
  ['oops', [['', 'oops']]],
];

test('highlight gives each line its tokens', () => {
  for (const [i, [line, want]] of cases.entries()) {
    assert.deepEqual(highlight(line), [want], `case ${i}: ${line}`);
  }
});

test('highlight keeps one array per line, across multi-line strings and arrays', () => {
  const text = 'a = """\none\ntwo"""\nlisten = [\n  "udp://0.0.0.0:5060",\n]\nb = 1\n';
  const lines = highlight(text);
  assert.equal(lines.length, text.split('\n').length);
  assert.deepEqual(lines[1], [['string', 'one']]);
  assert.deepEqual(lines[4], [['', '  '], ['string', '"udp://0.0.0.0:5060"'], ['punct', ',']]);
  assert.deepEqual(lines[6][0], ['key', 'b']);
  // The text comes back whole: the editor's overlay must line up with it.
  assert.equal(lines.map((l) => l.map((t) => t[1]).join('')).join('\n'), text);
});
