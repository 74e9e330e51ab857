// The http.ResponseWriter a function's Handle(w, r) writes to. By default it collects the
// answer (status, headers, body) and the call sends it whole in one `result` frame when the
// handler returns. A handler that calls Flush (http.Flusher) switches it to a streamed answer:
// a `head` frame (status, headers) at once, then a `chunk` frame per write, then `end`.
//
// Flow control of a streamed answer, as python-host.py's stream_answer: at most
// streamWindowBytes sent and not yet acknowledged (the worker's `ack` frames say how much the
// client took); a write past the window waits for acks. A `cancel` (the client went away)
// cancels r.Context(), and every write after it fails.
//
// As net/http's: the status is 200 unless WriteHeader said otherwise before the first Write;
// headers changed after that are not sent; a Content-Type the handler did not set is sniffed
// from the first bytes (http.DetectContentType). Header names go out lower-case, one pair per
// value.
package main

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
)

// streamWindowBytes is STREAM_WINDOW_BYTES in src/protocol/messages.ts.
const streamWindowBytes = 256 * 1024

var (
	errClientGone = errors.New("the client went away")
	errCallEnded  = errors.New("the call has ended: its ResponseWriter takes no more writes")
)

// invalidResponse is what WriteHeader panics with for a status the gateway cannot send; the
// call answers FUNCTION_RESPONSE_INVALID with its message.
type invalidResponse struct{ message string }

type responseWriter struct {
	id     int64
	frames *frameWriter
	// syncOutput sends what the function printed so far: before each chunk, as python-host.py.
	syncOutput func()

	header      http.Header
	wroteHeader bool
	status      int
	sent        http.Header // the headers as they were at WriteHeader
	body        []byte      // collected until the handler returns, or until Flush

	writeMu   sync.Mutex // one Write or Flush at a time: chunks go out in order
	mu        sync.Mutex // guards what the frame reader changes: unacked, cancelled, done
	cond      *sync.Cond
	streaming bool
	unacked   int64
	cancelled bool
	done      bool
}

func newResponseWriter(id int64, frames *frameWriter, syncOutput func()) *responseWriter {
	w := &responseWriter{id: id, frames: frames, syncOutput: syncOutput, header: make(http.Header), status: http.StatusOK}
	w.cond = sync.NewCond(&w.mu)
	return w
}

func (w *responseWriter) Header() http.Header { return w.header }

// WriteHeader sets the status; the first call wins, as in net/http. 1xx codes are ignored:
// an answer here has one head.
func (w *responseWriter) WriteHeader(status int) {
	if status < 100 || status > 599 {
		panic(invalidResponse{fmt.Sprintf("WriteHeader's status must be 100-599 (got %d)", status)})
	}
	if w.wroteHeader || status < 200 {
		return
	}
	w.wroteHeader = true
	w.status = status
	w.sent = w.header.Clone()
}

// Write collects p, or in a streamed answer sends it within the window.
func (w *responseWriter) Write(p []byte) (int, error) {
	w.writeMu.Lock()
	defer w.writeMu.Unlock()
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.isDone() {
		return 0, errCallEnded
	}
	if !w.streaming {
		w.body = append(w.body, p...)
		return len(p), nil
	}
	return w.sendChunks(p)
}

// Flush starts the streamed answer (if it has not started) and sends what was collected.
func (w *responseWriter) Flush() {
	w.writeMu.Lock()
	defer w.writeMu.Unlock()
	if w.isDone() || w.streaming {
		return
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.streaming = true
	w.syncOutput()
	w.frames.send(resultMeta{T: "head", ID: w.id, Status: w.status, Headers: w.headerList()}, nil)
	collected := w.body
	w.body = nil
	w.sendChunks(collected) // a cancel already here shows in the next Write
}

// sendChunks sends p as chunk frames, each when the window has room: unacked never passes
// streamWindowBytes. It stops at a cancel, or when the call ends.
func (w *responseWriter) sendChunks(p []byte) (int, error) {
	sent := 0
	for sent < len(p) {
		w.mu.Lock()
		for w.unacked >= streamWindowBytes && !w.cancelled && !w.done {
			w.cond.Wait()
		}
		cancelled, done := w.cancelled, w.done
		room := streamWindowBytes - w.unacked
		n := int64(len(p) - sent)
		if n > room {
			n = room
		}
		if !cancelled && !done {
			w.unacked += n
		}
		w.mu.Unlock()
		if cancelled {
			return sent, errClientGone
		}
		if done {
			return sent, errCallEnded
		}
		w.syncOutput()
		w.frames.send(chunkMeta{T: "chunk", ID: w.id}, p[sent:sent+int(n)])
		sent += int(n)
	}
	return sent, nil
}

// ack: the client took bytes more of a streamed answer.
func (w *responseWriter) ack(bytes int64) {
	w.mu.Lock()
	w.unacked -= bytes
	w.cond.Broadcast()
	w.mu.Unlock()
}

// cancel: the client went away; writes fail from now on.
func (w *responseWriter) cancel() {
	w.mu.Lock()
	w.cancelled = true
	w.cond.Broadcast()
	w.mu.Unlock()
}

// finish closes the writer when the handler returns (a goroutine it left behind may still hold
// it). It says whether the answer was streamed and whether it was cancelled.
func (w *responseWriter) finish() (streaming, cancelled bool) {
	w.mu.Lock()
	w.done = true
	cancelled = w.cancelled
	w.cond.Broadcast()
	w.mu.Unlock()
	w.writeMu.Lock() // a write still in flight from another goroutine ends first
	defer w.writeMu.Unlock()
	return w.streaming, cancelled
}

func (w *responseWriter) isDone() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.done
}

// headerList is the headers as sent: lower-case names in sorted order, one pair per value, and a
// sniffed Content-Type when the handler set none and there is a body to sniff.
func (w *responseWriter) headerList() []string {
	h := w.sent
	if h == nil {
		h = w.header.Clone()
	}
	if _, set := h["Content-Type"]; !set && len(w.body) > 0 {
		h.Set("Content-Type", http.DetectContentType(w.body))
	}
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	sort.Strings(names)
	list := make([]string, 0, 2*len(h))
	for _, name := range names {
		for _, value := range h[name] {
			list = append(list, strings.ToLower(name), value)
		}
	}
	return list
}
