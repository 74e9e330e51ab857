# Runs inside the sandbox: loads one python function and serves invocations over fd 3, or in a
# container over the bind-mounted Unix socket FAAS_CHANNEL names (frames:
# src/protocol/instance-frames.ts), one call at a time.
# Usage: python3 python-host.py ENTRY_FILE [HANDLER [FUNCTION_NAME MEMORY_MB]]
#    or: python3 python-host.py          (pre-started: the first frame is a `load` with the code)
# The python zygote (python-zygote.py) imports it instead and calls serve() in each child.
import binascii
import importlib.util
import itertools
import json
import os
import select
import signal
import socket
import struct
import sys
import time
import traceback
from urllib.parse import parse_qsl, quote

from python_lambda import lambda_event

LOG_CAP_BYTES = 8 * 1024
# Unacknowledged bytes a streamed answer may have on its way: STREAM_WINDOW_BYTES in src/protocol/messages.ts.
STREAM_WINDOW_BYTES = 256 * 1024

conn = None  # the frame channel to the worker
entry = ""  # the function's file; empty for a pre-started host until its `load` frame
handler_name = ""  # the route's `handler`; empty: handle, or else lambda_handler
function_name = ""  # the route's key, for the Lambda context
memory_mb = "128"
log_stream = ""  # this instance's, for the Lambda context


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
        # The client's address: the peer, or behind --trusted-proxies the client it names (README, HTTP as a proxy).
        self.client_ip = call.get("clientIp")
        # W3C trace context of this call: a child of the client's trace, or of a new one.
        self.traceparent = self.headers.get("traceparent")

    def text(self):
        return self.body.decode("utf-8")

    def json(self):
        return json.loads(self.body)

    def __getitem__(self, key):  # request["body"] works as well as request.body
        return getattr(self, key)


# ---- Lambda style: as node-calls.mjs builds them (the same event, context labels and answers);
# the event is built in python_lambda.py.


class LambdaContext:
    """Lambda's context object. The ARN, log group and stream are local labels: no AWS resource stands behind them."""

    def __init__(self, call):
        self.function_name = function_name
        self.function_version = "$LATEST"  # a route serves its latest row
        self.invoked_function_arn = "arn:faas:lambda:local:000000000000:function:" + quote(function_name, safe="!'()*")
        self.memory_limit_in_mb = memory_mb  # a string, as Lambda's is
        self.aws_request_id = call["requestId"]
        self.log_group_name = "/faas/" + function_name
        self.log_stream_name = log_stream
        self.identity = None
        self.client_context = None
        self.deadline_ms = call["deadlineMs"]

    def get_remaining_time_in_millis(self):
        return max(0, int(self.deadline_ms - time.time() * 1000))


def to_bytes(body):
    if body is None:
        return b""
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()


def to_response(result):
    """str, bytes, dict (JSON) or {"statusCode", "headers", "multiValueHeaders", "cookies", "body",
    "isBase64Encoded"} (an API Gateway proxy result) -> (status, headers, body)."""
    if isinstance(result, str):
        return 200, ["content-type", "text/plain; charset=utf-8"], result.encode()
    if isinstance(result, (bytes, bytearray)):
        return 200, ["content-type", "application/octet-stream"], bytes(result)
    if isinstance(result, dict) and "statusCode" in result:
        status = result["statusCode"]
        if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
            raise TypeError("statusCode must be an integer 100-599 (got %r)" % (status,))
        multi = result.get("multiValueHeaders") or {}
        in_multi = {str(k).lower() for k in multi}  # a name in both: API Gateway sends these values only
        headers = []
        for k, v in (result.get("headers") or {}).items():
            if v is not None and str(k).lower() not in in_multi:
                headers += [str(k).lower(), header_value(v)]
        for k, vs in multi.items():
            for v in vs if isinstance(vs, (list, tuple)) else [vs]:
                if v is not None:
                    headers += [str(k).lower(), header_value(v)]
        cookies = result.get("cookies") or []
        for c in cookies if isinstance(cookies, (list, tuple)) else [cookies]:
            headers += ["set-cookie", str(c)]
        body = result.get("body")
        if result.get("isBase64Encoded") and isinstance(body, str):
            try:
                body = binascii.a2b_base64(body)
            except binascii.Error as err:
                raise ValueError("isBase64Encoded is true but body is not base64 (%s)" % err) from None
        if isinstance(body, (dict, list)) and not any(headers[i] == "content-type" for i in range(0, len(headers), 2)):
            headers += ["content-type", "application/json"]
        return status, headers, body if streamed(body) else to_bytes(body)
    if isinstance(result, (dict, list)):
        return 200, ["content-type", "application/json"], json.dumps(result).encode()
    if streamed(result):  # a generator: its items are the body, sent as they come
        return 200, ["content-type", "text/plain; charset=utf-8"], result
    raise TypeError("the handler must return str, bytes, dict or {statusCode, headers, body} (got %s)" % type(result).__name__)


def streamed(body):
    """A body to stream: a generator or any other iterator (a list is JSON, a str text)."""
    return hasattr(body, "__next__")


END = object()


class Cancelled(Exception):
    """The client of a streamed answer went away."""


def read_frame():
    frame_bytes, meta_bytes = struct.unpack(">II", recv_exact(8))
    meta = json.loads(recv_exact(meta_bytes))
    return meta, recv_exact(frame_bytes - 4 - meta_bytes)


def stream_answer(call_id, status, headers, items):
    """Sends a generator's items as they come (str as UTF-8, bytes as they are), never more than
    the window ahead of what the client has taken: past it, waits for the worker's acks. A cancel
    (the client went) closes the generator; an exception in it cuts the answer short."""
    try:  # the generator's code runs now: until its first item, a failure is a plain error answer
        first = next(items, END)
    except Exception as err:
        sys.stderr.write("".join(traceback.format_exception(type(err), err, err.__traceback__)))
        flush_output()
        send({"t": "error", "id": call_id, "code": "FUNCTION_ERROR", "message": "%s: %s" % (type(err).__name__, err)})
        return
    send({"t": "head", "id": call_id, "status": status, "headers": headers})
    unacked = 0
    error = None

    def control(block):
        nonlocal unacked
        while block or select.select([conn], [], [], 0)[0]:
            meta, _ = read_frame()
            if meta.get("id") != call_id:
                continue  # a late ack of an earlier call
            if meta["t"] == "ack":
                unacked -= meta["bytes"]
            elif meta["t"] == "cancel":
                raise Cancelled()
            block = unacked >= STREAM_WINDOW_BYTES

    try:
        for item in itertools.chain(() if first is END else (first,), items):
            if isinstance(item, str):
                data = item.encode()
            elif isinstance(item, (bytes, bytearray, memoryview)):
                data = bytes(item)
            else:
                raise TypeError("a streamed body yields str or bytes (got %s)" % type(item).__name__)
            flush_output()  # what it printed before this item goes out first
            if data:
                send({"t": "chunk", "id": call_id}, data)
                unacked += len(data)
            control(unacked >= STREAM_WINDOW_BYTES)
    except Cancelled:
        error = "the client went away"
        getattr(items, "close", lambda: None)()
    except Exception as err:
        sys.stderr.write("".join(traceback.format_exception(type(err), err, err.__traceback__)))
        error = "%s: %s" % (type(err).__name__, err)
    flush_output()
    send({"t": "end", "id": call_id, **({"error": error} if error else {})})


def header_value(v):
    """A number or boolean header value as JavaScript writes it (true, not True)."""
    return "true" if v is True else "false" if v is False else str(v)


# Where the sandbox mounts the packages the gateway installed from the function's requirements.txt
# (src/build/pip.ts; README "Dependencies").
DEPS_DIR = "/deps"


def load():
    """The function and whether it is called Lambda style, fn(event, context), or fn(request)."""
    # Imports find the function's own folder first, then its installed packages, then the standard library.
    for folder in (DEPS_DIR, os.path.dirname(entry)):
        if os.path.isdir(folder) and folder not in sys.path:
            sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location("function", entry)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in [handler_name] if handler_name else ["handle", "lambda_handler"]:
        fn = getattr(module, name, None)
        if callable(fn):
            return fn, name == "lambda_handler" or takes_event_and_context(fn)
    if handler_name:
        raise AttributeError("%s defines no function named %r" % (entry, handler_name))
    raise AttributeError("%s defines neither handle(request) nor lambda_handler(event, context); "
                         "name another function in the route's \"handler\"" % entry)


def takes_event_and_context(fn):
    """Two positional parameters (event, context) or more: Lambda style; one (request): handle.
    Read from the code object: importing inspect would add ~8 ms to a start."""
    while hasattr(fn, "__wrapped__"):  # through functools.wraps decorators
        fn = fn.__wrapped__
    code = getattr(fn, "__code__", None)
    if code is None:
        return False
    return code.co_argcount - (1 if hasattr(fn, "__self__") else 0) >= 2


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
    global entry, handler_name, function_name, memory_mb
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
    handler_name, function_name, memory_mb = meta["handler"], meta["key"], str(meta["memoryMb"])
    os.environ.update(meta["env"])


def flush_output():
    """What the call printed without a final newline goes out before its answer."""
    sys.stdout.flush()
    sys.stderr.flush()


def serve(connection, entry_file="", handler="", name="", memory="128"):
    """Serves one function over `connection` until the worker closes it."""
    global conn, entry, handler_name, function_name, memory_mb
    conn, entry, handler_name, function_name, memory_mb = connection, entry_file, handler, name, memory
    sys.stdout = CallOutput("stdout")
    sys.stderr = CallOutput("stderr")
    main()


def main():
    global log_stream
    if not entry:
        adopt()
    # One per instance (after the zygote's fork), as Lambda's log stream is.
    log_stream = time.strftime("%Y/%m/%d/[$LATEST]", time.gmtime()) + os.urandom(16).hex()
    try:
        fn, lambda_style = load()
    except BaseException as err:  # noqa: B902 - a function's import can raise anything
        send({"t": "load_error", "message": "".join(traceback.format_exception_only(type(err), err)).strip()})
        return
    send({"t": "ready"})
    while True:
        meta, body = read_frame()
        if meta.get("t") != "invoke":
            continue  # flow control of a streamed answer already ended
        CallOutput.call_id, CallOutput.used = meta["id"], 0
        try:
            result = fn(lambda_event(meta, body), LambdaContext(meta)) if lambda_style else fn(Request(meta, body))
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
        if streamed(out):
            stream_answer(meta["id"], status, headers, out)
        else:
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
    serve(connection, *sys.argv[1:5])
