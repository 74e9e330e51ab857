// Node, Lambda style, callback and CommonJS, as much older Lambda code is: the answer is what
// goes to callback(err, result) (or context.succeed / fail / done). callback(err) is a 500
// FUNCTION_ERROR carrying the error's message. multiValueHeaders and multiValueQueryStringParameters
// hold every value of a repeated header or parameter; headers and queryStringParameters the last.
//
//   faas deploy GET:/greet examples/lambda-callback.cjs --runtime node
//   faas invoke 'GET:/greet?name=ann&name=bob'   → hello ann, bob (128 MB, 29998 ms left)
exports.handler = function (event, context, callback) {
  const names = event.multiValueQueryStringParameters?.name;
  if (!names) return callback(new Error('a name is required: ?name=…'));
  setTimeout(() => callback(null, {
    statusCode: 200,
    headers: { 'Content-Type': 'text/plain; charset=utf-8' },
    multiValueHeaders: { 'X-Greeted': names },
    body: `hello ${names.join(', ')} (${context.memoryLimitInMB} MB, ${context.getRemainingTimeInMillis()} ms left)\n`,
  }), 1);
};
