// Stage: the status URL of an async invocation (/.faas/invocations/ID, async-accept.ts) is the
// gateway's own, not a route's.
import { answerStatus, STATUS_PATH } from '../async-accept.js';
import type { Call } from './call.js';

export function statusUrl(c: Call): boolean {
  const calls = c.deps.asyncCalls;
  if (calls === undefined || !c.path.startsWith(STATUS_PATH)) return true;
  const found = calls.status(c.path, c.method);
  if (typeof found !== 'string') c.refuseEarly(found, found.code === 'METHOD_NOT_ALLOWED' ? [['allow', 'GET, HEAD']] : undefined);
  else {
    c.dropBody();
    answerStatus(c.res, found, c.requestId, c.deps.serverHeader, c.head);
    c.observe(200);
  }
  return false;
}
