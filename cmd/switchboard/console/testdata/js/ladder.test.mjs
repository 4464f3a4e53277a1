// Tests of the ladder's ordering and labels (assets/ladder.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { causal, label } from '../../assets/ladder.js';

const msg = (direction, peer, first, cseq) => ({
  direction, src: direction === 'in' ? peer : 'proxy', dst: direction === 'in' ? 'proxy' : peer,
  first_line: first, text: `${first}\r\nCSeq: ${cseq}\r\n\r\n`,
});
const A = '127.0.0.2:5060', B = '127.0.0.3:5060';
const names = (list) => list.map((m) => `${m.direction} ${m.direction === 'in' ? m.src : m.dst} ${label(m.first_line)}`);

test('causal puts each answer after the message it answers', () => {
  const cases = [
    {
      name: 'a 180 recorded before the INVITE it answers',
      in: [msg('in', A, 'INVITE sip:b SIP/2.0', '1 INVITE'), msg('in', B, 'SIP/2.0 180 Ringing', '1 INVITE'), msg('out', B, 'INVITE sip:b SIP/2.0', '1 INVITE')],
      want: [`in ${A} INVITE`, `out ${B} INVITE`, `in ${B} 180 Ringing`],
    },
    {
      name: 'an ACK recorded before the 200 it acknowledges',
      in: [msg('in', A, 'ACK sip:b SIP/2.0', '1 ACK'), msg('out', A, 'SIP/2.0 200 OK', '1 INVITE')],
      want: [`out ${A} 200 OK`, `in ${A} ACK`],
    },
    {
      name: 'answers in order stay',
      in: [msg('out', B, 'BYE sip:b SIP/2.0', '2 BYE'), msg('in', B, 'SIP/2.0 200 OK', '2 BYE')],
      want: [`out ${B} BYE`, `in ${B} 200 OK`],
    },
    {
      name: 'a request sent to another party is no cause',
      in: [msg('in', B, 'SIP/2.0 200 OK', '2 BYE'), msg('out', A, 'BYE sip:a SIP/2.0', '2 BYE')],
      want: [`in ${B} 200 OK`, `out ${A} BYE`],
    },
  ];
  for (const c of cases) assert.deepEqual(names(causal(c.in)), c.want, c.name);
});

test('label shortens first lines', () => {
  assert.equal(label('INVITE sip:bob@sip.test SIP/2.0'), 'INVITE');
  assert.equal(label('SIP/2.0 200 OK THANKS'), '200 OK THANKS');
  assert.equal(label(''), '');
});
