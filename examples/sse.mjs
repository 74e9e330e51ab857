// Node, Workers style, streamed: server-sent events (SSE), one event a second. The Response goes
// back at once with a ReadableStream as its body; the gateway sends each event to the client as
// the stream produces it (chunked), and reads the stream no faster than the client takes it
// (pull is called for the next event only when there is room). A client that leaves cancels the
// stream. timeout_ms bounds the whole stream: keep count × 1 s under it (default 30 s).
//
//   faas deploy GET:/clock examples/sse.mjs --runtime node
//   curl -N 'localhost:8080/clock?count=5'     → id: 0 / event: tick / data: {"n":0,"time":"…"}, one a second
//
// or with SQL (the file's absolute path; its folders must be o+x and the file o+r, as the sandbox
// user reads it), live within one sync period:
//
//   sqlite3 data/faas.db "INSERT INTO functions(k, v) VALUES ('GET:/clock', json_object('runtime', 'node', 'path', '$PWD/examples/sse.mjs', 'timeout_ms', 60000))"
//   curl -N localhost:8080/clock
const encoder = new TextEncoder();

export default {
  async fetch(request, env, ctx) {
    const count = Math.min(Number(new URL(request.url).searchParams.get('count')) || 10, 25); // 25 s fit in the default timeout_ms
    let n = 0;
    const events = new ReadableStream({
      async pull(controller) {
        if (n > 0) await new Promise((resolve) => setTimeout(resolve, 1000));
        const data = JSON.stringify({ n, time: new Date().toISOString() });
        controller.enqueue(encoder.encode(`id: ${n}\nevent: tick\ndata: ${data}\n\n`));
        if (++n === count) controller.close();
      },
      cancel() {
        console.log(`${ctx.requestId}: the client left after ${n} events`);
      },
    });
    return new Response(events, { headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' } });
  },
};
