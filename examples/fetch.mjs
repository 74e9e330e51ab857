// Node, Workers style: `export default { fetch(request, env, ctx) }` with WHATWG Request and
// Response, as on Cloudflare Workers. Shows the query string, the route's environment
// (faas deploy … --env GREETING=hi), ctx.requestId, and console.log going to the gateway's log
// under the call's request id (faas logs GET:/hello).
//
//   faas deploy GET:/hello examples/fetch.mjs --runtime node --env GREETING=hello
//   faas invoke 'GET:/hello?name=you'        → {"greeting":"hello, you","requestId":"…"}
export default {
  async fetch(request, env, ctx) {
    const name = new URL(request.url).searchParams.get('name') ?? 'world';
    console.log(`greeting ${name}`);
    return Response.json({ greeting: `${env.GREETING ?? 'hello'}, ${name}`, requestId: ctx.requestId });
  },
};
