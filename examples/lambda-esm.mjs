// Node, Lambda style: the function the Lambda console creates for a new Node.js function, as it
// is. A handler that takes only `event` may ignore the rest of the API Gateway event (README
// "Lambda").
//
//   faas deploy GET:/lambda examples/lambda-esm.mjs --runtime node
//   faas invoke GET:/lambda          → "Hello from Lambda!"
export const handler = async (event) => {
  // TODO implement
  const response = {
    statusCode: 200,
    body: JSON.stringify('Hello from Lambda!'),
  };
  return response;
};
