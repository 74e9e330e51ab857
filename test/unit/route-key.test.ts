import { describe, expect, it } from 'vitest';
import { METHODS, parseRouteKey } from '../../src/routes/route-key.js';

describe('parseRouteKey', () => {
  it('splits METHOD:/path for every method', () => {
    for (const method of METHODS) {
      expect(parseRouteKey(`${method}:/api/resize`)).toEqual({ ok: true, method, path: '/api/resize' });
    }
  });

  it('keeps colons, percent escapes and non-ASCII letters after the first colon', () => {
    expect(parseRouteKey('GET:/a:b/%20/é')).toEqual({ ok: true, method: 'GET', path: '/a:b/%20/é' });
    expect(parseRouteKey('GET:/')).toEqual({ ok: true, method: 'GET', path: '/' });
  });

  it('refuses a method that is not upper case, unknown, or missing, naming the rule and the input', () => {
    expect(parseRouteKey('get:/x')).toEqual({
      ok: false,
      error: `functions.k must be 'METHOD:/path' with METHOD in upper case, one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS (got "get:/x")`,
    });
    for (const k of ['TRACE:/x', '/x', 'GET /x', ':/x', '', 'GET']) {
      const r = parseRouteKey(k);
      expect(r.ok, k).toBe(false);
      if (!r.ok) expect(r.error).toContain(`(got ${JSON.stringify(k)})`);
    }
  });

  it.each([
    ['GET:x', 'must start with "/"'],
    ['GET:', 'must start with "/"'],
    ['GET:/a?b=1', 'must not contain "?"'],
    ['GET:/a#top', 'must not contain "#"'],
    ['GET:/a b', 'must not contain whitespace or control characters'],
    ['GET:/a\tb', 'must not contain whitespace or control characters'],
    ['GET:/a\nb', 'must not contain whitespace or control characters'],
    ['GET:/a\u0000', 'must not contain whitespace or control characters'],
    ['GET:/a\u007f', 'must not contain whitespace or control characters'],
    ['GET:/a\u00a0', 'must not contain whitespace or control characters'],
    ['GET:/a\u2028', 'must not contain whitespace or control characters'],
  ])('refuses the path of %j', (k, rule) => {
    const r = parseRouteKey(k);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(new RegExp(`^functions\\.k path ${rule.replace(/[?"]/g, '\\$&')}`));
  });

  it('allows paths up to 2048 characters, counted in code points', () => {
    expect(parseRouteKey(`GET:/${'a'.repeat(2047)}`).ok).toBe(true);
    expect(parseRouteKey(`GET:/${'😀'.repeat(2047)}`).ok).toBe(true); // 4095 UTF-16 units
    const long = parseRouteKey(`GET:/${'a'.repeat(2048)}`);
    expect(long.ok).toBe(false);
    if (!long.ok) {
      expect(long.error).toMatch(/^functions\.k path must be at most 2048 characters \(got "GET:\/aaa/);
      expect(long.error.length).toBeLessThan(200); // the echoed input is cut short
    }
  });
});
