# Runs inside the sandbox: loads one python function and serves invocations over fd 3, or in a
# container over the bind-mounted Unix socket FAAS_CHANNEL names (frames:
# workers/instance-frames.ts), one call at a time.
# Usage: python3 python-host.py ENTRY_FILE [HANDLER]
#    or: python3 python-host.py          (pre-started: the first frame is a `load` with the code)
# The python zygote (python-zygote.py) imports it instead and calls serve() in each child.
import importlib.util
import json
import os
import signal
import socket
import struct
import sys
import traceback
from urllib.parse import parse_qsl

LOG_CAP_BYTES = 8 * 1024

conn = None  # the frame channel to the worker
entry = ""  # the function's file; empty for a pre-started host until its `load` frame
handler_name = "handle"


def send(meta, body=b""):
    data = json.dumps(meta).encode()
    conn.sendall(struct.pack(">II", 4 + len(data) + len(body), len(data)) + data + body)


class CallOutput:
    """sys.stdout / sys.stderr: what the function prints goes to the worker's log, capped per call.
    Line-buffered, as a terminal is: print("a", b) is one entry, not four."""

    call_id = 0
    used = 0

    def __init__(self, stream):
        self.stream = stream
        self.pending = ""

    def write(self, text):
        if not text:
            return 0
        self.pending += text
        cut = self.pending.rfind("\n")
        if cut >= 0 or len(self.pending) >= 8192:
            end = len(self.pending) if cut < 0 else cut + 1
            self.emit(self.pending[:end])
            self.pending = self.pending[end:]
        return len(text)

    def flush(self):
        if self.pending:
            self.emit(self.pending)
            self.pending = ""

    def emit(self, text):
        if CallOutput.used >= LOG_CAP_BYTES:
            return
        raw = text.encode("utf-8", "replace")
        room = LOG_CAP_BYTES - CallOutput.used
        out = raw if len(raw) <= room else raw[:room] + b"\n[output truncated at %d bytes]" % LOG_CAP_BYTES
        CallOutput.used += len(raw)
        send({"t": "log", "id": CallOutput.call_id, "stream": self.stream, "text": out.decode("utf-8", "replace")})



class Request:
    """What handle(request) receives: method, path, query, headers, body (bytes)."""

    def __init__(self, call, body):
        self.method = call["method"]
        self.path = call["path"]
        self.query_string = call["query"]
        self.query = dict(parse_qsl(call["query"], keep_blank_values=True))
        h = call["headers"]
        self.headers = {}
        for i in range(0, len(h) - 1, 2):
            self.headers[h[i]] = self.headers[h[i]] + "," + h[i + 1] if h[i] in self.headers else h[i + 1]
        self.body = body
        self.request_id = call["requestId"]
        # W3C trace context of this call: a child of the client's trace, or of a new one.
        self.traceparent = self.headers.get("traceparent")

    def text(self):
        return self.body.decode("utf-8")

    def json(self):
        return json.loads(self.body)

    def __getitem__(self, key):  # request["body"] works as well as request.body
        return getattr(self, key)


def to_bytes(body):
    if body is None:
        return b""
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()


def to_response(result):
    """str, bytes, dict (JSON) or {"statusCode", "headers", "body"} -> (status, headers, body)."""
    if isinstance(result, str):
        return 200, ["content-type", "text/plain; charset=utf-8"], result.encode()
    if isinstance(result, (bytes, bytearray)):
        return 200, ["content-type", "application/octet-stream"], bytes(result)
    if isinstance(result, dict) and "statusCode" in result:
        status = result["statusCode"]
        if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
            raise TypeError("statusCode must be an integer 100-599 (got %r)" % (status,))
        headers = []
        for k, v in (result.get("headers") or {}).items():
            headers += [str(k).lower(), str(v)]
        body = result.get("body")
        if isinstance(body, (dict, list)) and not any(headers[i] == "content-type" for i in range(0, len(headers), 2)):
            headers += ["content-type", "application/json"]
        return status, headers, to_bytes(body)
    if isinstance(result, (dict, list)):
        return 200, ["content-type", "application/json"], json.dumps(result).encode()
    raise TypeError("handle() must return str, bytes, dict or {statusCode, headers, body} (got %s)" % type(result).__name__)


def load():
    spec = importlib.util.spec_from_file_location("function", entry)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fn = getattr(module, handler_name, None)
    if not callable(fn):
        raise AttributeError("%s defines no function named %r" % (entry, handler_name))
    return fn


def recv_exact(n):
    chunks = []
    while n > 0:
        chunk = conn.recv(min(n, 1 << 20))
        if not chunk:
            sys.exit(0)
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def adopt():
    """A pre-started sandbox becomes one function's: its code in the private /tmp, its env."""
    global entry, handler_name
    frame_bytes, meta_bytes = struct.unpack(">II", recv_exact(8))
    meta = json.loads(recv_exact(meta_bytes))
    body = recv_exact(frame_bytes - 4 - meta_bytes)
    if meta.get("t") != "load":
        raise SystemExit("expected a load frame")
    at = 0
    for file in meta["files"]:  # the function's files, one after another in the body
        dest = os.path.normpath(os.path.join("/tmp/.fn", file["path"]))
        if not dest.startswith("/tmp/.fn/"):
            raise SystemExit("load frame: a file outside the code folder: %s" % file["path"])
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "wb") as f:
            f.write(body[at:at + file["bytes"]])
        at += file["bytes"]
    entry = os.path.join("/tmp/.fn", meta["entry"])
    handler_name = meta["handler"] or "handle"
    os.environ.update(meta["env"])


def flush_output():
    """What the call printed without a final newline goes out before its answer."""
    sys.stdout.flush()
    sys.stderr.flush()


def serve(connection, entry_file, handler):
    """Serves one function over `connection` until the worker closes it."""
    global conn, entry, handler_name
    conn, entry, handler_name = connection, entry_file, handler or "handle"
    sys.stdout = CallOutput("stdout")
    sys.stderr = CallOutput("stderr")
    main()


def main():
    if not entry:
        adopt()
    try:
        fn = load()
    except BaseException as err:  # noqa: B902 - a function's import can raise anything
        send({"t": "load_error", "message": "".join(traceback.format_exception_only(type(err), err)).strip()})
        return
    send({"t": "ready"})
    while True:
        frame_bytes, meta_bytes = struct.unpack(">II", recv_exact(8))
        meta = json.loads(recv_exact(meta_bytes))
        body = recv_exact(frame_bytes - 4 - meta_bytes)
        CallOutput.call_id, CallOutput.used = meta["id"], 0
        try:
            result = fn(Request(meta, body))
        except Exception as err:
            tb = traceback.format_exception(type(err), err, err.__traceback__)
            sys.stderr.write("".join(tb))
            flush_output()
            send({"t": "error", "id": meta["id"], "code": "FUNCTION_ERROR", "message": "%s: %s" % (type(err).__name__, err)})
            continue
        flush_output()
        try:
            status, headers, out = to_response(result)
        except (TypeError, ValueError) as err:
            send({"t": "error", "id": meta["id"], "code": "FUNCTION_RESPONSE_INVALID", "message": str(err)})
            continue
        send({"t": "result", "id": meta["id"], "status": status, "headers": headers}, out)


if __name__ == "__main__":
    # The worker stops an instance with SIGTERM, then SIGKILL after a grace period. In a
    # container this host is pid 1, which the kernel spares signals it has no handler for.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    channel = os.environ.pop("FAAS_CHANNEL", None)  # the worker's, not the function's
    if channel:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.connect(channel)
    else:
        connection = socket.socket(fileno=3)
    serve(connection, sys.argv[1] if len(sys.argv) > 1 else "", sys.argv[2] if len(sys.argv) > 2 else "")
