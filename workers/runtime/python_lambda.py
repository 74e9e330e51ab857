# The event a Lambda-style python handler gets, as node-calls.mjs builds it for node: API
# Gateway's REST API event (payload 1.0), or the HTTP API payload 2.0 for a route with
# "event": "v2". Pure: the host (python-host.py) imports it. Runs inside the sandbox: the standard
# library only.
import binascii
import re
import time
from urllib.parse import parse_qsl

TEXTUAL = re.compile(r"^(text/|application/(json|xml|javascript|x-www-form-urlencoded|graphql)|[^;]*\+(json|xml))", re.I)


class Headers(dict):
    """REST APIs keep the header case the client sent; ours arrive lower-cased (HTTP/2 and HTTP
    APIs send them so): headers["Content-Type"] finds content-type, as Lambda code often reads it."""

    def __missing__(self, key):
        if isinstance(key, str) and key.lower() != key and dict.__contains__(self, key.lower()):
            return dict.__getitem__(self, key.lower())
        raise KeyError(key)

    def __contains__(self, key):
        return dict.__contains__(self, key) or (isinstance(key, str) and dict.__contains__(self, key.lower()))

    def get(self, key, default=None):
        return self[key] if key in self else default


def lambda_event(call, body):
    """API Gateway's REST API event (payload 1.0), or the HTTP API payload 2.0 when the route says "event": "v2"."""
    pairs = list(zip(call["headers"][0::2], call["headers"][1::2]))
    params = parse_qsl(call["query"], keep_blank_values=True)
    now = time.time()
    when = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now))
    now_ms = int(now * 1000)
    if call.get("event") == "v2":
        headers, query, cookies = {}, {}, []
        for k, v in pairs:
            if k == "cookie":
                cookies += [c for c in re.split(r";\s*", v) if c]
            else:
                headers[k] = headers[k] + "," + v if k in headers else v
        for k, v in params:
            query[k] = query[k] + "," + v if k in query else v
        host = headers.get("host", "localhost")
        route_key = "%s %s" % (call["method"], call["path"])
        event = {"version": "2.0", "routeKey": route_key, "rawPath": call["path"], "rawQueryString": call["query"]}
        if cookies:
            event["cookies"] = cookies
        event["headers"] = headers
        if query:
            event["queryStringParameters"] = query
        event["requestContext"] = {
            "domainName": host, "domainPrefix": host.split(".")[0],
            "http": {"method": call["method"], "path": call["path"], "protocol": "HTTP/1.1",
                     "sourceIp": source_ip(call, headers), "userAgent": headers.get("user-agent")},
            "requestId": call["requestId"], "routeKey": route_key, "stage": "$default", "time": when, "timeEpoch": now_ms,
        }
        if body:  # no body: no `body` field, as API Gateway sends it
            event["body"], event["isBase64Encoded"] = event_body(headers.get("content-type"), body)
        else:
            event["isBase64Encoded"] = False
        return event
    headers, multi = Headers(), Headers()
    for k, v in pairs:
        headers[k] = v  # the last value; every one in multiValueHeaders
        multi.setdefault(k, []).append(v)
    query, multi_query = {}, {}
    for k, v in params:
        query[k] = v
        multi_query.setdefault(k, []).append(v)
    text, encoded = event_body(headers.get("content-type"), body) if body else (None, False)
    return {
        "resource": call["path"],  # routes are exact paths: the resource is the path
        "path": call["path"],
        "httpMethod": call["method"],
        "headers": headers,
        "multiValueHeaders": multi,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": call["path"], "httpMethod": call["method"], "path": call["path"], "stage": "$default",
            "requestId": call["requestId"], "requestTime": when, "requestTimeEpoch": now_ms, "protocol": "HTTP/1.1",
            "domainName": headers.get("host", "localhost"),
            "identity": {"sourceIp": source_ip(call, headers), "userAgent": headers.get("user-agent")},
        },
        "body": text,
        "isBase64Encoded": encoded,
    }


def event_body(content_type, body):
    """A text body (text/*, JSON, XML, form) that is valid UTF-8 as a string, anything else base64, as API Gateway does with binary media types."""
    if TEXTUAL.match(content_type or "text/plain"):
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return binascii.b2a_base64(body, newline=False).decode("ascii"), True


def source_ip(call, headers):
    """The client's address the gateway saw; before it says, the last X-Forwarded-For hop."""
    if call.get("clientIp"):
        return call["clientIp"]
    forwarded = headers.get("x-forwarded-for")
    return forwarded.split(",")[-1].strip() if forwarded else None
