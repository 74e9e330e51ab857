# Python: `handle(request)`, where request has .method, .path, .query (dict), .headers (dict,
# lower-case names) and .body (bytes). It returns str, bytes, a dict (sent as JSON) or
# {"statusCode", "headers", "body"}. What it prints goes to the gateway's log under the call's
# request id.
#
#   faas deploy POST:/words examples/handle.py --runtime python
#   faas invoke POST:/words --data 'the quick brown fox'   → {"words": 4, "longest": "quick", ...}


def handle(request):
    words = request.body.decode("utf-8", "replace").split()
    print("counting", len(words), "words")
    if not words:
        return {"statusCode": 400, "headers": {"content-type": "text/plain"}, "body": "send some words in the body\n"}
    return {"words": len(words), "longest": max(words, key=len), "query": request.query}
