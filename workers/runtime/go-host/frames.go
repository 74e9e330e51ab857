// Frames between this host and its worker, both ways (src/protocol/instance-frames.ts):
//
//	u32 BE frameBytes | u32 BE metaBytes | meta (UTF-8 JSON) | body (raw bytes)
//
// frameBytes = 4 + metaBytes + len(body), at most 64 MiB. Calls run concurrently, one goroutine
// each, so every frame goes out under one mutex: a frame reaches the socket whole, never
// interleaved with another. Keep this layout in step with python-host.py and node-calls.mjs.
package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"sync"
)

// maxFrameBytes is MAX_INSTANCE_FRAME_BYTES in src/protocol/instance-frames.ts.
const maxFrameBytes = 64 << 20

// inbound is any worker → host frame's meta: invoke, chunk, end, ack, cancel, account. Fields a
// frame type does not use stay zero. Unknown frame types are read and ignored.
type inbound struct {
	T          string   `json:"t"`
	ID         int64    `json:"id"`
	RequestID  string   `json:"requestId"`
	Method     string   `json:"method"`
	Path       string   `json:"path"`
	Query      string   `json:"query"`
	Headers    []string `json:"headers"`
	ClientIP   string   `json:"clientIp"`
	DeadlineMs float64  `json:"deadlineMs"` // unix ms; 0: none
	BodyStream bool     `json:"bodyStream"` // invoke: the body follows in chunk frames and an end
	Bytes      int64    `json:"bytes"`      // ack: bytes the client took
	Error      string   `json:"error"`      // end: the request body broke off
}

// Host → worker metas. Headers are a flat list: name, value, name, value… (names lower-case).
type readyMeta struct {
	T string `json:"t"`
}

type resultMeta struct {
	T       string   `json:"t"` // "result" (the body is the frame's) or "head" (chunk frames follow)
	ID      int64    `json:"id"`
	Status  int      `json:"status"`
	Headers []string `json:"headers"`
}

type errorMeta struct {
	T       string `json:"t"`
	ID      int64  `json:"id"`
	Code    string `json:"code"` // FUNCTION_ERROR or FUNCTION_RESPONSE_INVALID
	Message string `json:"message"`
}

type chunkMeta struct {
	T  string `json:"t"`
	ID int64  `json:"id"`
}

type endMeta struct {
	T     string `json:"t"`
	ID    int64  `json:"id"`
	Error string `json:"error,omitempty"` // the answer was cut short, and why
}

type logMeta struct {
	T      string `json:"t"`
	ID     int64  `json:"id"`
	Stream string `json:"stream"` // stdout or stderr
	Text   string `json:"text"`
}

// frameWriter sends frames to the worker; safe for concurrent use.
type frameWriter struct {
	mu   sync.Mutex
	conn net.Conn
	// failed is called when the worker's socket cannot be written: the host cannot go on.
	failed func(err error)
}

// frameFits says whether a body of bodyBytes fits in one frame beside a small meta.
func frameFits(bodyBytes int) bool {
	return bodyBytes <= maxFrameBytes-64*1024
}

// send writes one frame: meta as JSON, then body as it is.
func (w *frameWriter) send(meta interface{}, body []byte) {
	data, err := json.Marshal(meta)
	if err != nil {
		w.failed(fmt.Errorf("encoding a frame's meta (%T): %v", meta, err))
		return
	}
	frameBytes := 4 + len(data) + len(body)
	if frameBytes > maxFrameBytes {
		w.failed(fmt.Errorf("a frame of %d bytes is over the %d-byte limit", frameBytes, maxFrameBytes))
		return
	}
	head := make([]byte, 8, 8+len(data))
	binary.BigEndian.PutUint32(head[0:4], uint32(frameBytes))
	binary.BigEndian.PutUint32(head[4:8], uint32(len(data)))
	head = append(head, data...)
	buffers := net.Buffers{head}
	if len(body) > 0 {
		buffers = append(buffers, body)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := buffers.WriteTo(w.conn); err != nil {
		w.failed(fmt.Errorf("writing a frame to the worker: %v", err))
	}
}

// readFrame reads the next frame: its meta and its body (a fresh slice, the caller's to keep).
// io.EOF: the worker closed the channel between frames.
func readFrame(r io.Reader) (inbound, []byte, error) {
	var msg inbound
	var head [8]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return msg, nil, err
	}
	frameBytes := binary.BigEndian.Uint32(head[0:4])
	metaBytes := binary.BigEndian.Uint32(head[4:8])
	if frameBytes > maxFrameBytes || frameBytes < 4 || metaBytes > frameBytes-4 {
		return msg, nil, fmt.Errorf("the worker sent a bad frame header (frame %d bytes, meta %d bytes; "+
			"the frame must be 4 to %d bytes and hold its meta)", frameBytes, metaBytes, maxFrameBytes)
	}
	rest := make([]byte, frameBytes-4)
	if _, err := io.ReadFull(r, rest); err != nil {
		return msg, nil, fmt.Errorf("reading a frame of %d bytes: %v", frameBytes, err)
	}
	if err := json.Unmarshal(rest[:metaBytes], &msg); err != nil {
		return msg, nil, fmt.Errorf("the worker sent a frame whose meta is not JSON: %v", err)
	}
	return msg, rest[metaBytes:], nil
}
