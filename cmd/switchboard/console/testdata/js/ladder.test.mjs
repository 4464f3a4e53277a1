// Tests of the ladder's labels (assets/ladder.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { label } from '../../assets/ladder.js';

test('label shortens first lines', () => {
  assert.equal(label('INVITE sip:bob@sip.test SIP/2.0'), 'INVITE');
  assert.equal(label('SIP/2.0 200 OK THANKS'), '200 OK THANKS');
  assert.equal(label(''), '');
});
