// The admin API's bearer token (--admin-token-file): read from a file, so that it is in no
// command line (`ps`) and no environment a function or a child could see, and checked in
// constant time. The gateway reads it at start; the operators' commands (src/cli/) read the same
// file to call the admin API.
//
// Why digests: crypto.timingSafeEqual needs two buffers of one length, and comparing the
// presented token itself would leak its length through the early return. Both sides are hashed
// to SHA-256 first, so the comparison always runs over 32 bytes, whatever was sent.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readSecretFile } from './secret-file.js';

/** Fewer characters than this is too easy to guess; `openssl rand -hex 32` gives 64. */
export const MIN_TOKEN_CHARS = 16;
const MAX_TOKEN_CHARS = 4096;
/** Visible ASCII: a token travels in an HTTP header. */
const TOKEN_SHAPE = /^[\x21-\x7e]+$/;

export type TokenRead = { readonly token: string } | { readonly error: string };

/**
 * The token in `file`: its text without the trailing newline an editor or `echo` adds. The file
 * must hold one line of 16–4096 visible ASCII characters and must not be readable by others.
 */
export function readTokenFile(file: string): TokenRead {
  const read = readSecretFile(file);
  if ('error' in read) return read;
  const token = read.text;
  if (token.length < MIN_TOKEN_CHARS || token.length > MAX_TOKEN_CHARS || !TOKEN_SHAPE.test(token)) {
    return { error: `${file} must hold one line of ${MIN_TOKEN_CHARS}–${MAX_TOKEN_CHARS} visible ASCII characters, the token (make one with: openssl rand -hex 32 > ${file})` };
  }
  return { token };
}

/** Checks presented tokens against one, in constant time. */
export class TokenCheck {
  private readonly digest: Buffer;

  constructor(token: string) {
    this.digest = sha256(token);
  }

  /** True when `presented` is the token. Takes the same time for any presented value of any length. */
  matches(presented: string): boolean {
    return timingSafeEqual(sha256(presented), this.digest);
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
