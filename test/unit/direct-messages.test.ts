// The direct data path's control messages (src/protocol/direct.ts) cross the IPC channel between
// the gateway and its workers: each side checks what it reads and names what is wrong.
import { describe, expect, it } from 'vitest';
import { parseToGateway, parseToWorker } from '../../src/protocol/direct.js';

describe('messages from a worker', () => {
  it('passes a lease, slots, revoke, reclaim and gone as they are', () => {
    for (const msg of [
      { t: 'lease', instance: 'GET:/a#3.1', key: 'GET:/a', version: 3, slots: 99 },
      { t: 'slots', instance: 'GET:/a#3.1', slots: 100 },
      { t: 'revoke', instance: 'GET:/a#3.1' },
      { t: 'reclaim', instance: 'GET:/a#3.1' },
      { t: 'gone', instance: 'GET:/a#3.1', message: "the function's process exited (code 7)" },
    ]) expect(parseToGateway(msg)).toEqual(msg);
  });

  it.each([
    [null, /not a direct-path message \(t must be one of lease, slots, revoke, reclaim, gone\)/],
    ['lease', /not a direct-path message/],
    [{ t: 'release', instance: 'x' }, /not a direct-path message/], // the gateway's word, not a worker's
    [{ t: 'lease', instance: 'x', key: 'GET:/a', version: 1 }, /"lease" message needs slots: a whole number ≥ 0/],
    [{ t: 'lease', instance: 'x', key: 'GET:/a', version: -1, slots: 1 }, /needs version: a whole number ≥ 0/],
    [{ t: 'slots', instance: 'x', slots: 1.5 }, /needs slots: a whole number/],
    [{ t: 'gone', instance: 7, message: '' }, /"gone" message needs instance: a string/],
    [{ t: '__proto__' }, /not a direct-path message/],
  ])('refuses %j, saying why', (msg, why) => {
    expect(parseToGateway(msg)).toMatch(why);
  });
});

describe('messages from the gateway', () => {
  it('passes direct, release, busy, timeout and used', () => {
    for (const msg of [{ t: 'direct' }, { t: 'release', instance: 'i' }, { t: 'busy', instance: 'i' }, { t: 'timeout', instance: 'i' },
      { t: 'used', instances: ['i', 'j'] }, { t: 'used', instances: [] }]) expect(parseToWorker(msg)).toEqual(msg);
  });

  it.each([
    [{ t: 'used', instances: 'i' }, /"used" message needs instances: an array of names/],
    [{ t: 'used', instances: [1] }, /"used" message needs instances/],
    [{ t: 'timeout' }, /"timeout" message needs instance: a string/],
    [{ t: 'lease', instance: 'i', key: 'k', version: 1, slots: 1 }, /not a direct-path message/],
    [undefined, /not a direct-path message/],
  ])('refuses %j, saying why', (msg, why) => {
    expect(parseToWorker(msg)).toMatch(why);
  });
});
