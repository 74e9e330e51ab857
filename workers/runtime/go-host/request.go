// The *http.Request a function's Handle(w, r) receives, made from an `invoke` frame as net/http's
// server would make it: method, URL (path and query), Header (canonical names; Host moves to
// r.Host), RemoteAddr, the body, and a context cancelled when the worker sends `cancel` and
// done at the call's deadline (deadlineMs, the route's timeout_ms).
//
// A body sent whole comes in the invoke frame; with `bodyStream` it follows in `chunk` frames
// and an `end` as the gateway reads it from the client (streamBody).
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// newRequest makes the call's request. body is nil for a streamed body (the call's streamBody).
func newRequest(ctx context.Context, msg inbound, body []byte, streamed *streamBody) *http.Request {
	requestURI := msg.Path
	if msg.Query != "" {
		requestURI += "?" + msg.Query
	}
	u, err := url.ParseRequestURI(requestURI)
	if err != nil { // a path net/http would refuse: keep it as it came rather than fail the call
		u = &url.URL{Path: msg.Path, RawQuery: msg.Query}
	}
	r := &http.Request{
		Method:     msg.Method,
		URL:        u,
		RequestURI: requestURI,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     make(http.Header),
		RemoteAddr: remoteAddr(msg.ClientIP),
	}
	for i := 0; i+1 < len(msg.Headers); i += 2 {
		name, value := msg.Headers[i], msg.Headers[i+1]
		if strings.EqualFold(name, "host") { // as net/http's server: r.Host, not r.Header
			if r.Host == "" {
				r.Host = value
			}
			continue
		}
		r.Header.Add(http.CanonicalHeaderKey(name), value)
	}
	// The call's id, the one the client gets back in x-request-id (the gateway's own, or the
	// client's when it sent a valid one): Go handlers read it as a header, as behind a proxy.
	if msg.RequestID != "" {
		r.Header.Set("X-Request-Id", msg.RequestID)
	}
	if streamed != nil {
		r.Body = streamed
		r.ContentLength = -1 // unknown, unless the client said
		if n, err := strconv.ParseInt(r.Header.Get("Content-Length"), 10, 64); err == nil && n >= 0 {
			r.ContentLength = n
		}
	} else if len(body) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	} else {
		r.Body = http.NoBody
	}
	return r.WithContext(ctx)
}

// remoteAddr is r.RemoteAddr: net/http's is "ip:port", and handlers split it with
// net.SplitHostPort, so the client's address gets port 0 (the gateway does not pass the port).
// Empty when the gateway sent no clientIp.
func remoteAddr(clientIP string) string {
	if clientIP == "" {
		return ""
	}
	return net.JoinHostPort(clientIP, "0")
}

// callContext is the call's context: cancelled by the returned function (on `cancel`, and when
// the call ends), and done at deadlineMs when the worker sent one.
func callContext(deadlineMs float64) (context.Context, context.CancelFunc) {
	if deadlineMs <= 0 {
		return context.WithCancel(context.Background())
	}
	return context.WithDeadline(context.Background(), time.UnixMilli(int64(deadlineMs)))
}

// streamBody is a request body that arrives in chunk frames. The frame reader pushes without
// ever waiting (a handler that never reads its body must not stall other calls' frames); the
// handler's Read waits for the next chunk, the end, or the call's end.
type streamBody struct {
	mu     sync.Mutex
	cond   *sync.Cond
	chunks [][]byte
	ended  bool
	err    error // the body broke off, or the call was cancelled
	closed bool
}

func newStreamBody() *streamBody {
	b := &streamBody{}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// push adds a chunk frame's bytes.
func (b *streamBody) push(data []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed && !b.ended && b.err == nil && len(data) > 0 {
		b.chunks = append(b.chunks, data)
		b.cond.Broadcast()
	}
}

// finish marks the end: reason "" is the whole body, anything else a break (the client went).
func (b *streamBody) finish(reason string) {
	if reason != "" {
		b.fail(fmt.Errorf("the request body broke off: %s", reason))
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ended = true
	b.cond.Broadcast()
}

// fail makes the next Read return err once the chunks already here are read.
func (b *streamBody) fail(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.ended && b.err == nil {
		b.err = err
		b.cond.Broadcast()
	}
}

// Read reads the body's next bytes, waiting for them to arrive.
func (b *streamBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.chunks) == 0 && !b.ended && b.err == nil && !b.closed {
		b.cond.Wait()
	}
	if b.closed {
		return 0, errors.New("http: invalid Read on closed Body")
	}
	if len(b.chunks) == 0 {
		if b.err != nil {
			return 0, b.err
		}
		return 0, io.EOF
	}
	n := copy(p, b.chunks[0])
	if n == len(b.chunks[0]) {
		b.chunks = b.chunks[1:]
	} else {
		b.chunks[0] = b.chunks[0][n:]
	}
	return n, nil
}

// Close drops what is left; later chunks are dropped as they come.
func (b *streamBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.chunks = nil
	b.cond.Broadcast()
	return nil
}
