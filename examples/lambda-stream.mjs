// Lambda response streaming, as on a function URL: a handler wrapped in
// awslambda.streamifyResponse writes its answer as it goes. Deploy and read it as it comes:
//   faas deploy GET:/countdown examples/lambda-stream.mjs --runtime node
//   curl -N 'localhost:8080/countdown?from=3'
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';

export const handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  const from = Number(event.queryStringParameters?.from ?? 3);
  responseStream = awslambda.HttpResponseStream.from(responseStream, {
    statusCode: 200,
    headers: { 'content-type': 'text/plain; charset=utf-8', 'x-request-id-seen': context.awsRequestId },
  });
  for (let n = from; n > 0; n--) {
    responseStream.write(`${n}…\n`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  // pipeline() ends the stream when the source is done, as in Lambda.
  await pipeline(Readable.from(['lift-off\n']), responseStream);
});
