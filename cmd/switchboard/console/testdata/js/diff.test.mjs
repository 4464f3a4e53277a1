// Tests of lineDiff (assets/editor.js), the "Your changes" view.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lineDiff } from '../../assets/editor.js';

const cases = [
  { a: 'x\ny', b: 'x\ny', want: [] },
  { a: 'a\nb\nc', b: 'a\nB\nc', want: [['@', '@@ line 1 @@'], [' ', 'a'], ['-', 'b'], ['+', 'B'], [' ', 'c']] },
  { a: 'a', b: 'a\nb', want: [['@', '@@ line 1 @@'], [' ', 'a'], ['+', 'b']] },
  { a: '1\n2\n3\n4\n5\n6\n7\n8\n9', b: '1\n2\n3\n4\n5\n6\n7\n8\nnine', context: 1,
    want: [['@', '@@ line 8 @@'], [' ', '8'], ['-', '9'], ['+', 'nine']] },
];

test('lineDiff gives the changed lines with their context', () => {
  for (const [i, c] of cases.entries()) {
    assert.deepEqual(lineDiff(c.a, c.b, c.context), c.want, `case ${i}`);
  }
});
