# Python, Lambda style: the function the Lambda console creates for a new Python function, as it
# is. A module that defines lambda_handler(event, context) and no handle(request) is called Lambda
# style without a `handler` in its row (README "Lambda").
#
#   faas deploy GET:/lambda-py examples/lambda_function.py --runtime python
#   faas invoke GET:/lambda-py       → "Hello from Lambda!"
import json


def lambda_handler(event, context):
    # TODO implement
    return {
        'statusCode': 200,
        'body': json.dumps('Hello from Lambda!')
    }
