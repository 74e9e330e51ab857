# A python function streams a generator: each item goes to the client as it is yielded.
#   faas deploy GET:/ticks examples/stream.py --runtime python
#   curl -N 'localhost:8080/ticks?count=3'
import json
import time


def handle(request):
    count = int(request.query.get("count", "3"))

    def ticks():
        for n in range(count):
            yield "data: %s\n\n" % json.dumps({"n": n})
            time.sleep(0.2)

    return {"statusCode": 200, "headers": {"content-type": "text/event-stream"}, "body": ticks()}
