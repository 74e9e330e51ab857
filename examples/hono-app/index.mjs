// Node, Workers style, with a router: a Hono app (https://hono.dev). `export default app` is an
// object with fetch(request, env, ctx), which is all a Workers-style function is, so Hono's
// own Cloudflare Workers template runs unmodified: c.env is the route's env, c.executionCtx its
// ctx (waitUntil, requestId).
//
// The gateway routes on exact METHOD:/path keys: deploy the folder once per path it serves
// (README.md beside this file). A path the app has no route for gets Hono's own 404.
import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';

const app = new Hono();

app.get('/api/hello', (c) => c.json({ greeting: `${c.env.GREETING ?? 'hello'}, ${c.req.query('name') ?? 'world'}`, requestId: c.executionCtx.requestId }));

app.post('/api/echo', async (c) => c.json({ got: await c.req.json(), agent: c.req.header('user-agent') ?? null }));

// Server-sent events: a tick every second, five in all, each sent as it is written.
app.get('/api/events', (c) => streamSSE(c, async (stream) => {
  stream.onAbort(() => console.log('the client left'));
  for (let id = 0; id < 5 && !stream.aborted; id++) {
    await stream.writeSSE({ event: 'tick', id: String(id), data: JSON.stringify({ n: id, time: new Date().toISOString() }) });
    await stream.sleep(1000);
  }
}));

export default app;
