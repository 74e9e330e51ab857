// One call: runs the function's handler on its own goroutine and sends the answer. A panic in
// the handler is recovered here and becomes the call's error (FUNCTION_ERROR, the panic's value
// in the message, the stack in the call's stderr log); the host serves on. What the handler
// printed goes out before its answer.
package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime/debug"
)

// call is a call in flight, as the frame reader finds it by id.
type call struct {
	id     int64
	seq    uint64      // start order: output goes to the most recent call in flight
	cancel func()      // cancels r.Context()
	body   *streamBody // nil unless the body comes in chunk frames
	w      *responseWriter
}

// handlerPanic is a recovered panic: its value and where it happened.
type handlerPanic struct {
	value interface{}
	stack []byte
}

// serveCall runs the handler and answers; the host forgets the call when it returns.
func (h *host) serveCall(c *call, r *http.Request) {
	defer h.forget(c)
	failure := runHandler(c.w, r)
	if failure != nil {
		h.logPanic(failure)
	}
	h.syncOutput()
	streaming, cancelled := c.w.finish()
	switch {
	case streaming:
		end := endMeta{T: "end", ID: c.id}
		if cancelled {
			end.Error = errClientGone.Error()
		} else if failure != nil {
			end.Error = panicMessage(failure.value)
		}
		h.frames.send(end, nil)
	case failure != nil:
		code := "FUNCTION_ERROR"
		if _, invalid := failure.value.(invalidResponse); invalid {
			code = "FUNCTION_RESPONSE_INVALID"
		}
		h.frames.send(errorMeta{T: "error", ID: c.id, Code: code, Message: panicMessage(failure.value)}, nil)
	case !frameFits(len(c.w.body)):
		h.frames.send(errorMeta{T: "error", ID: c.id, Code: "FUNCTION_RESPONSE_INVALID", Message: fmt.Sprintf(
			"the response body is %d bytes; at most %d fit in one answer (call w.(http.Flusher).Flush() to stream it)",
			len(c.w.body), maxFrameBytes-64*1024)}, nil)
	default:
		h.frames.send(resultMeta{T: "result", ID: c.id, Status: c.w.status, Headers: c.w.headerList()}, c.w.body)
	}
}

// runHandler calls the function's handler and recovers a panic in it.
func runHandler(w *responseWriter, r *http.Request) (failure *handlerPanic) {
	defer func() {
		if value := recover(); value != nil {
			failure = &handlerPanic{value: value, stack: debug.Stack()}
		}
	}()
	userHandler(w, r)
	return nil
}

// logPanic writes the panic and its stack to the call's stderr log, as python-host.py writes a
// traceback. http.ErrAbortHandler is net/http's quiet way to abort: no stack for it.
func (h *host) logPanic(failure *handlerPanic) {
	if _, invalid := failure.value.(invalidResponse); invalid {
		return
	}
	if err, ok := failure.value.(error); ok && errors.Is(err, http.ErrAbortHandler) {
		return
	}
	fmt.Fprintf(os.Stderr, "panic: %s\n\n%s", panicValue(failure.value), failure.stack)
}

// panicMessage is the error frame's message for a recovered panic.
func panicMessage(value interface{}) string {
	if invalid, ok := value.(invalidResponse); ok {
		return invalid.message
	}
	if err, ok := value.(error); ok && errors.Is(err, http.ErrAbortHandler) {
		return "the handler aborted the answer (panic(http.ErrAbortHandler))"
	}
	return "panic: " + panicValue(value)
}

// panicValue prints a panic's value as the Go runtime does: an error's or Stringer's text,
// anything else with %v.
func panicValue(value interface{}) string {
	switch v := value.(type) {
	case error:
		return v.Error()
	case fmt.Stringer:
		return v.String()
	default:
		return fmt.Sprintf("%v", v)
	}
}
