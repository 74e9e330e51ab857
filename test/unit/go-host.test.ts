// The Go runtime host (workers/runtime/go-host/), built as the gateway builds it: the host's files
// in faashost/ of the function's module, an entry.go naming the handler, `go build` with no
// network. The binary is then driven over fd 3 with the instance frames, as a worker drives it.
// Skipped where Go is not installed.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  encodeInstanceFrame, InstanceFrameDecoder, type HostControl, type HostInvoke, type HostMessage,
} from '../../src/protocol/instance-frames.js';

const GO = '/usr/bin/go';
const HOST_DIR = new URL('../../workers/runtime/go-host/', import.meta.url).pathname;

// One handler, a behaviour per path.
const FUNCTION_GO = `package function

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"time"
)

func Handle(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/echo":
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]interface{}{
			"method": r.Method, "path": r.URL.Path, "query": r.URL.Query().Get("a"), "raw": r.URL.RawQuery,
			"xa": r.Header["X-A"], "host": r.Host, "remote": r.RemoteAddr, "body": string(body),
			"length": r.ContentLength, "hasDeadline": hasDeadline(r),
		})
	case "/status":
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Add("Set-Cookie", "b=2")
		w.Header().Set("X-One", "1")
		w.WriteHeader(201)
		w.Header().Set("X-Late", "not sent")
		w.Write([]byte("created"))
	case "/panic":
		panic("boom " + r.URL.Query().Get("n"))
	case "/log":
		fmt.Println("to stdout")
		log.Printf("to stderr %s", "via log")
		fmt.Fprint(os.Stdout, "no newline")
		w.Write([]byte("logged"))
	case "/flood":
		fmt.Print(strings.Repeat(strings.Repeat("x", 99)+"\\n", 200))
		w.Write([]byte("flooded"))
	case "/stream":
		piece := strings.Repeat("s", 64*1024)
		for i := 0; i < 16; i++ {
			if _, err := w.Write([]byte(piece)); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	case "/cancel":
		w.Write([]byte("head"))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		_, err := w.Write([]byte("late"))
		fmt.Fprintf(os.Stderr, "ctx=%v write=%v\\n", r.Context().Err(), err)
	case "/stream-panic":
		w.Write([]byte("part"))
		w.(http.Flusher).Flush()
		panic("mid-stream")
	case "/env":
		fmt.Fprintf(w, "FAAS_CHANNEL=%q", os.Getenv("FAAS_CHANNEL"))
	case "/sleep":
		d, _ := time.ParseDuration(r.URL.Query().Get("d"))
		time.Sleep(d)
		w.Write([]byte(r.URL.Query().Get("d")))
	default:
		http.NotFound(w, r)
	}
}

func hasDeadline(r *http.Request) bool {
	_, ok := r.Context().Deadline()
	return ok
}
`;

const ENTRY_GO = `package main

import (
	"net/http"

	function "function"
)

var userHandler http.HandlerFunc = function.Handle
`;

type Frame = { meta: HostMessage; body: Buffer };

/** One running host: frames as they come, and a way to wait for the next one that matches. */
class Instance {
  readonly frames: Frame[] = [];
  private readonly waiters: Array<() => void> = [];
  private readonly socket: Duplex;

  constructor(readonly child: ChildProcess, socket?: Duplex) {
    this.socket = socket ?? (child.stdio[3] as Duplex);
    const decoder = new InstanceFrameDecoder();
    this.socket.on('data', (chunk: Buffer) => {
      this.frames.push(...decoder.push(chunk));
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  send(meta: HostInvoke | HostControl, body?: Buffer): void {
    for (const buf of encodeInstanceFrame(meta, body)) this.socket.write(buf);
  }

  invoke(id: number, pathAndQuery: string, extra: Partial<HostInvoke> = {}, body?: Buffer): void {
    const [p, q = ''] = pathAndQuery.split('?');
    this.send({
      t: 'invoke', id, requestId: `r${id}`, method: 'GET', path: p!, query: q, headers: ['host', 'fn.test'],
      clientIp: '203.0.113.9', deadlineMs: Date.now() + 30_000, ...extra,
    }, body);
  }

  /** Takes (removes) the first frame that matches, waiting for it up to timeoutMs. */
  async take(match: (f: Frame) => boolean, timeoutMs = 10_000): Promise<Frame> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const at = this.frames.findIndex(match);
      if (at >= 0) return this.frames.splice(at, 1)[0]!;
      const left = until - Date.now();
      if (left <= 0) throw new Error(`no matching frame within ${timeoutMs} ms; have ${JSON.stringify(this.frames.map((f) => f.meta))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
  }

  /** The answer of call `id`: its result or error frame. */
  answer(id: number): Promise<Frame> {
    return this.take((f) => 'id' in f.meta && f.meta.id === id && (f.meta.t === 'result' || f.meta.t === 'error'));
  }

  /** Every log frame of call `id` received so far, removed. */
  logs(id: number): Array<{ stream: string; text: string }> {
    const out: Array<{ stream: string; text: string }> = [];
    for (let i = 0; i < this.frames.length;) {
      const m = this.frames[i]!.meta;
      if (m.t === 'log' && m.id === id) {
        out.push({ stream: m.stream, text: m.text });
        this.frames.splice(i, 1);
      } else i++;
    }
    return out;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(!fs.existsSync(GO))('go runtime host', () => {
  let dir = '';
  let bin = '';
  let inst: Instance;
  let stderr = '';

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'go-host-test-'));
    const mod = path.join(dir, 'mod');
    fs.mkdirSync(path.join(mod, 'faashost'), { recursive: true });
    fs.writeFileSync(path.join(mod, 'go.mod'), 'module function\n\ngo 1.19\n');
    fs.writeFileSync(path.join(mod, 'handler.go'), FUNCTION_GO);
    for (const file of fs.readdirSync(HOST_DIR).filter((f) => f.endsWith('.go'))) {
      fs.copyFileSync(path.join(HOST_DIR, file), path.join(mod, 'faashost', file));
    }
    fs.writeFileSync(path.join(mod, 'faashost', 'entry.go'), ENTRY_GO);
    bin = path.join(dir, 'function');
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: path.join(dir, 'home'), GOCACHE: path.join(dir, 'gocache'),
      GOPATH: path.join(dir, 'gopath'), CGO_ENABLED: '0', GOPROXY: 'off',
    };
    const build = spawnSync(GO, ['build', '-trimpath', '-o', bin, './faashost'], { cwd: mod, env, encoding: 'utf8' });
    if (build.status !== 0) throw new Error(`go build failed (status ${build.status}):\n${build.stderr}`);

    const child = spawn(bin, ['GET:/t', '128'], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
    child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    inst = new Instance(child);
  }, 180_000);

  afterAll(() => {
    inst?.child.kill('SIGKILL');
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('says ready once loaded', async () => {
    const ready = await inst.take((f) => f.meta.t === 'ready');
    expect(ready.meta).toEqual({ t: 'ready' });
  });

  it('gives the handler the method, path, query, headers, host and client address', async () => {
    inst.invoke(1, '/echo?a=1&b=2', { headers: ['host', 'fn.test', 'x-a', 'one', 'x-a', 'two'] });
    const { meta, body } = await inst.answer(1);
    expect(meta).toMatchObject({ t: 'result', id: 1, status: 200, headers: ['content-type', 'application/json'] });
    expect(JSON.parse(body.toString())).toEqual({
      method: 'GET', path: '/echo', query: '1', raw: 'a=1&b=2', xa: ['one', 'two'], host: 'fn.test',
      remote: '203.0.113.9:0', body: '', length: 0, hasDeadline: true,
    });
  });

  it('gives the handler a POST body', async () => {
    inst.invoke(2, '/echo', { method: 'POST' }, Buffer.from('posted body'));
    const { body } = await inst.answer(2);
    expect(JSON.parse(body.toString())).toMatchObject({ method: 'POST', body: 'posted body', length: 11 });
  });

  it('sends the status and every value of a multi-valued header, as they were at WriteHeader', async () => {
    inst.invoke(3, '/status');
    const { meta, body } = await inst.answer(3);
    expect(meta).toEqual({
      t: 'result', id: 3, status: 201,
      headers: ['content-type', 'text/plain; charset=utf-8', 'set-cookie', 'a=1', 'set-cookie', 'b=2', 'x-one', '1'],
    });
    expect(body.toString()).toBe('created');
  });

  it('turns a panic into the call\'s error and serves the next call', async () => {
    inst.invoke(4, '/panic?n=4');
    const { meta } = await inst.answer(4);
    expect(meta).toEqual({ t: 'error', id: 4, code: 'FUNCTION_ERROR', message: 'panic: boom 4' });
    expect(inst.logs(4).map((l) => l.text).join('')).toMatch(/^panic: boom 4\n\ngoroutine /);
    inst.invoke(5, '/status');
    expect((await inst.answer(5)).meta).toMatchObject({ t: 'result', status: 201 });
  });

  it('sends stdout and stderr as log frames of the call, before its answer', async () => {
    inst.invoke(6, '/log');
    await inst.answer(6);
    const logs = inst.logs(6);
    expect(logs.filter((l) => l.stream === 'stdout').map((l) => l.text).join('')).toBe('to stdout\nno newline');
    expect(logs.filter((l) => l.stream === 'stderr').map((l) => l.text).join('')).toMatch(/^\d{4}\/\d\d\/\d\d \S+ to stderr via log\n$/);
  });

  it('caps a call\'s output at 8 KiB', async () => {
    inst.invoke(7, '/flood');
    await inst.answer(7);
    const text = inst.logs(7).map((l) => l.text).join('');
    expect(text.endsWith('\n[output truncated at 8192 bytes]')).toBe(true);
    expect(text.length).toBe(8192 + '\n[output truncated at 8192 bytes]'.length);
  });

  it('streams a flushed answer, never more than 256 KiB ahead of the acks', async () => {
    const isChunk = (f: Frame): boolean => f.meta.t === 'chunk' && f.meta.id === 8;
    inst.invoke(8, '/stream');
    const head = await inst.take((f) => f.meta.t === 'head' && f.meta.id === 8);
    expect(head.meta).toEqual({ t: 'head', id: 8, status: 200, headers: ['content-type', 'text/plain; charset=utf-8'] });
    let received = 0;
    const takeUpTo = async (total: number): Promise<void> => {
      while (received < total) received += (await inst.take(isChunk)).body.length;
    };
    await takeUpTo(256 * 1024);
    expect(received).toBe(256 * 1024);
    await sleep(300); // nothing more comes without an ack
    expect(inst.frames.filter(isChunk)).toEqual([]);
    inst.send({ t: 'ack', id: 8, bytes: 100 * 1024 }); // room for 100 KiB more
    await takeUpTo(356 * 1024);
    await sleep(200);
    expect(received).toBe(356 * 1024);
    expect(inst.frames.filter(isChunk)).toEqual([]);
    inst.send({ t: 'ack', id: 8, bytes: 256 * 1024 }); // the client took all it has
    while (received < 1024 * 1024) { // and now takes each chunk as it comes
      const { body } = await inst.take(isChunk);
      received += body.length;
      inst.send({ t: 'ack', id: 8, bytes: body.length });
    }
    expect(received).toBe(1024 * 1024);
    expect((await inst.take((f) => f.meta.t === 'end' && f.meta.id === 8)).meta).toEqual({ t: 'end', id: 8 });
  });

  it('cancels r.Context() on cancel and fails the stream\'s later writes', async () => {
    inst.invoke(9, '/cancel');
    await inst.take((f) => f.meta.t === 'head' && f.meta.id === 9);
    expect((await inst.take((f) => f.meta.t === 'chunk' && f.meta.id === 9)).body.toString()).toBe('head');
    inst.send({ t: 'cancel', id: 9 });
    const end = await inst.take((f) => f.meta.t === 'end' && f.meta.id === 9);
    expect(end.meta).toEqual({ t: 'end', id: 9, error: 'the client went away' });
    expect(inst.logs(9)).toEqual([{ stream: 'stderr', text: 'ctx=context canceled write=the client went away\n' }]);
  });

  it('cuts a streamed answer short when the handler panics in it', async () => {
    inst.invoke(13, '/stream-panic');
    await inst.take((f) => f.meta.t === 'head' && f.meta.id === 13);
    expect((await inst.take((f) => f.meta.t === 'chunk' && f.meta.id === 13)).body.toString()).toBe('part');
    const end = await inst.take((f) => f.meta.t === 'end' && f.meta.id === 13);
    expect(end.meta).toEqual({ t: 'end', id: 13, error: 'panic: mid-stream' });
  });

  it('reads a request body that comes in chunk frames', async () => {
    inst.invoke(10, '/echo', { method: 'PUT', bodyStream: true });
    await sleep(50);
    inst.send({ t: 'chunk', id: 10 }, Buffer.from('first '));
    inst.send({ t: 'chunk', id: 10 }, Buffer.from('second'));
    inst.send({ t: 'end', id: 10 });
    const { body } = await inst.answer(10);
    expect(JSON.parse(body.toString())).toMatchObject({ method: 'PUT', body: 'first second', length: -1 });
  });

  it('runs calls concurrently', async () => {
    inst.invoke(11, '/sleep?d=600ms');
    inst.invoke(12, '/sleep?d=10ms');
    expect((await inst.answer(12)).body.toString()).toBe('10ms');
    expect(inst.frames.filter((f) => 'id' in f.meta && f.meta.id === 11)).toEqual([]); // still sleeping
    expect((await inst.answer(11)).body.toString()).toBe('600ms');
  });

  it('connects to the socket FAAS_CHANNEL names, and keeps it from the function', async () => {
    const socketPath = path.join(dir, 'channel.sock');
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    const child = spawn(bin, ['GET:/t', '128'], { stdio: ['ignore', 'pipe', 'pipe', 'ignore'], env: { FAAS_CHANNEL: socketPath } });
    try {
      const socket = await new Promise<net.Socket>((resolve) => server.once('connection', resolve));
      const viaPath = new Instance(child, socket);
      await viaPath.take((f) => f.meta.t === 'ready');
      viaPath.invoke(1, '/env');
      expect((await viaPath.answer(1)).body.toString()).toBe('FAAS_CHANNEL=""');
      socket.end();
      const status = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect(status).toBe(0); // the worker closed the channel: the instance is done
    } finally {
      child.kill('SIGKILL');
      server.close();
    }
  });

  it('wrote nothing of its own to the sandbox\'s stderr', () => {
    expect(stderr).toBe('');
  });
});
