// Node, Lambda style, in CommonJS as much Lambda code is: `exports.handler(event, context)` gets
// an API Gateway proxy event (httpMethod, path, headers, queryStringParameters, body,
// isBase64Encoded) and returns { statusCode, headers, body }. A text body (text/*, JSON, form)
// arrives as a string, anything else base64 with isBase64Encoded: true.
//
//   faas deploy POST:/echo examples/lambda.cjs --runtime node
//   faas invoke POST:/echo --data 'hi there' -H 'content-type: text/plain'
exports.handler = async (event, context) => {
  const body = event.isBase64Encoded ? Buffer.from(event.body ?? '', 'base64').toString('utf8') : event.body ?? '';
  return {
    statusCode: 200,
    headers: { 'content-type': 'text/plain; charset=utf-8' },
    body: `${event.httpMethod} ${event.path} got ${JSON.stringify(body)} (request ${context.awsRequestId})\n`,
  };
};
