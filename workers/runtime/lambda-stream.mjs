// Lambda response streaming: handlers wrapped in awslambda.streamifyResponse get
// (event, responseStream, context) and write their answer to responseStream, a Node Writable;
// awslambda.HttpResponseStream.from(stream, { statusCode, headers, cookies }) sets the status
// and headers first, as on a Lambda function URL. Here the writable is turned into the same
// ReadableStream a Workers function answers with, so one pump (node-host.mjs) sends both, with
// the same flow control: a handler that writes faster than the client reads sees write()
// return false and 'drain' later, as Node streams do. Runs inside the sandbox.
import { PassThrough, Readable } from 'node:stream';

/** What the Lambda Node runtime marks a streamified handler with. */
const STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const PRELUDE = Symbol('http prelude');
const CONTENT_TYPE = Symbol('content type');

/** The `awslambda` global of the Lambda Node runtime, for modules that use it at import. */
export function installAwsLambda() {
  globalThis.awslambda ??= {
    streamifyResponse(handler) {
      handler[STREAMING] = 'response';
      return handler;
    },
    HttpResponseStream: {
      from(stream, prelude) {
        stream[PRELUDE] = prelude ?? {};
        return stream;
      },
    },
  };
}

export const isStreamified = (handler) => handler?.[STREAMING] === 'response';

/**
 * Calls a streamified handler. Resolves with the answer's head and its body as a ReadableStream
 * once the handler first writes, ends its stream or returns; rejects if it throws before that
 * (a plain error answer). A throw after is the stream's error: the answer is cut short.
 */
export function runLambdaStream(handler, event, context) {
  const out = new PassThrough();
  out.setContentType = (type) => {
    out[CONTENT_TYPE] = String(type);
  };
  return new Promise((resolve, reject) => {
    let started = false;
    const start = () => {
      if (started) return;
      started = true;
      resolve(answer(out));
    };
    for (const method of ['write', 'end']) {
      const original = out[method].bind(out);
      out[method] = (...args) => {
        start();
        return original(...args);
      };
    }
    Promise.resolve()
      .then(() => handler(event, out, context))
      .then(() => {
        if (!out.writableEnded) out.end();
        start();
      }, (err) => {
        if (started) out.destroy(err instanceof Error ? err : new Error(String(err)));
        else reject(err);
      });
  });
}

function answer(out) {
  const prelude = out[PRELUDE] ?? {};
  const status = prelude.statusCode ?? 200;
  if (!Number.isInteger(status) || status < 100 || status > 599) {
    return { invalid: `HttpResponseStream.from: statusCode must be an integer 100–599 (got ${String(prelude.statusCode)})` };
  }
  const headers = [];
  for (const [name, value] of Object.entries(prelude.headers ?? {})) headers.push(name.toLowerCase(), String(value));
  for (const cookie of prelude.cookies ?? []) headers.push('set-cookie', String(cookie));
  // A function URL's streamed answer without a content type is application/octet-stream.
  if (!headers.includes('content-type')) headers.push('content-type', out[CONTENT_TYPE] ?? 'application/octet-stream');
  return { status, headers, stream: Readable.toWeb(out) };
}
