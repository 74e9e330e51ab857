// The Go runtime host: runs inside the sandbox as the function's own static binary and serves
// its calls over fd 3, or in a container over the bind-mounted Unix socket FAAS_CHANNEL names
// (frames: src/protocol/instance-frames.ts, frames.go). Calls run concurrently, one goroutine
// each, as net/http's server runs them.
// Usage: /fn/function KEY MEMORY_MB
//
// The gateway builds the binary from the function's module (package function, with
// func Handle(w http.ResponseWriter, r *http.Request), OpenFaaS golang-http's shape): it copies
// this folder's files into faashost/ and adds faashost/entry.go, which declares
//
//	var userHandler http.HandlerFunc = function.Handle   // or the route's handler
//
// so every file here is package main, and none of them declares userHandler.
package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
)

// host is this instance: its channel to the worker and the calls in flight.
type host struct {
	frames   *frameWriter
	logs     *callLogs
	streams  []*outputStream
	failures *os.File // the sandbox's own fd 2: the worker logs it; the host's failures go there

	mu    sync.Mutex
	calls map[int64]*call
	seq   uint64
}

func main() {
	// KEY (os.Args[1]) labels this instance; MEMORY_MB (os.Args[2]) is the route's memory_mb,
	// which the sandbox's cgroup enforces: the garbage collector is told to keep the heap under
	// it (a soft limit, GOMEMLIMIT's), so it collects harder before the kernel kills the instance.
	setMemoryLimit()
	//
	// The worker stops an instance with SIGTERM, then SIGKILL after a grace period. In a
	// container this host is pid 1, which the kernel spares signals it has no handler for.
	terms := make(chan os.Signal, 1)
	signal.Notify(terms, syscall.SIGTERM)
	go func() { <-terms; os.Exit(0) }()

	h := &host{calls: make(map[int64]*call), failures: os.Stderr}
	conn, err := openChannel()
	if err != nil {
		h.fail(err)
	}
	h.frames = &frameWriter{conn: conn, failed: h.fail}
	h.logs = &callLogs{used: make(map[int64]int), current: h.currentCallID, frames: h.frames}
	streams, original, err := captureOutput(h.logs)
	if err != nil {
		h.fail(err)
	}
	h.streams, h.failures = streams, original
	h.frames.send(readyMeta{T: "ready"}, nil)
	h.serve(bufio.NewReaderSize(conn, 64*1024))
}

// openChannel connects to the worker: the socket FAAS_CHANNEL names (a container), else fd 3
// (the socketpair the sandbox inherits). FAAS_CHANNEL is the worker's, not the function's: it
// leaves the environment.
func openChannel() (net.Conn, error) {
	if path := os.Getenv("FAAS_CHANNEL"); path != "" {
		os.Unsetenv("FAAS_CHANNEL")
		conn, err := net.Dial("unix", path)
		if err != nil {
			return nil, fmt.Errorf("connecting to the worker's socket FAAS_CHANNEL=%s: %v", path, err)
		}
		return conn, nil
	}
	f := os.NewFile(3, "worker channel")
	conn, err := net.FileConn(f) // a duplicate (close-on-exec); fd 3 itself is closed below
	if err != nil {
		return nil, fmt.Errorf("fd 3 must be the worker's Unix stream socket, and FAAS_CHANNEL is not set: %v", err)
	}
	f.Close()
	return conn, nil
}

// serve reads the worker's frames until it closes the channel, then exits.
func (h *host) serve(r io.Reader) {
	for {
		msg, body, err := readFrame(r)
		if err == io.EOF {
			os.Exit(0) // the worker closed the channel: this instance is done
		}
		if err != nil {
			h.fail(err)
		}
		h.dispatch(msg, body)
	}
}

// dispatch acts on one frame. Frames for a call that is not in flight (a late ack) and frames
// of unknown types are ignored; `account` (direct-path figures) does not apply to this host.
func (h *host) dispatch(msg inbound, body []byte) {
	if msg.T == "invoke" {
		h.start(msg, body)
		return
	}
	h.mu.Lock()
	c := h.calls[msg.ID]
	h.mu.Unlock()
	if c == nil {
		return
	}
	switch msg.T {
	case "chunk":
		if c.body != nil {
			c.body.push(body)
		}
	case "end":
		if c.body != nil {
			c.body.finish(msg.Error)
		}
	case "ack":
		c.w.ack(msg.Bytes)
	case "cancel":
		c.w.cancel()
		c.cancel()
	}
}

// start registers a call (before the next frame is read: its chunk frames must find it) and
// runs it on its own goroutine.
func (h *host) start(msg inbound, body []byte) {
	ctx, cancel := callContext(msg.DeadlineMs)
	c := &call{id: msg.ID, cancel: cancel, w: newResponseWriter(msg.ID, h.frames, h.syncOutput)}
	if msg.BodyStream {
		c.body = newStreamBody()
		body = nil
		go func() { <-ctx.Done(); c.body.fail(ctx.Err()) }() // a cancelled call's read ends too
	}
	h.mu.Lock()
	h.seq++
	c.seq = h.seq
	h.calls[c.id] = c
	h.mu.Unlock()
	go h.serveCall(c, newRequest(ctx, msg, body, c.body))
}

// forget drops a call that has answered, and ends its context.
func (h *host) forget(c *call) {
	c.cancel()
	h.mu.Lock()
	delete(h.calls, c.id)
	h.mu.Unlock()
	h.logs.forget(c.id)
}

// currentCallID is the call output is tagged with: the most recently started call still in
// flight (with one in flight, that one), or 0 when none is.
func (h *host) currentCallID() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	var latest *call
	for _, c := range h.calls {
		if latest == nil || c.seq > latest.seq {
			latest = c
		}
	}
	if latest == nil {
		return 0
	}
	return latest.id
}

// syncOutput sends what the function printed so far, before an answer or a chunk.
func (h *host) syncOutput() {
	for _, s := range h.streams {
		s.sync()
	}
}

// fail reports a failure of the host itself on the sandbox's own stderr and exits: without its
// channel the instance can do nothing, and the worker sees the exit.
func (h *host) fail(err error) {
	fmt.Fprintf(h.failures, "go runtime host: %v\n", err)
	os.Exit(1)
}

// setMemoryLimit gives the garbage collector the instance's memory_mb as its soft limit, less
// room for what is not heap (stacks, the runtime's own); a GOMEMLIMIT in the function's env wins.
func setMemoryLimit() {
	if os.Getenv("GOMEMLIMIT") != "" || len(os.Args) < 3 {
		return
	}
	mb, err := strconv.Atoi(os.Args[2])
	if err != nil || mb <= 0 {
		return
	}
	debug.SetMemoryLimit(int64(mb) * 1024 * 1024 * 9 / 10)
}
