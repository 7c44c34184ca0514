#!/usr/bin/env python3
"""Signs one request with botocore's SigV4Auth, an implementation independent of ecs-prom's,
and prints the signature. Reads JSON on standard input: method, url, headers ([name, value]
pairs, exactly the headers to sign), body_hex, access_key, secret_key, token, region, service,
amz_date (the request's x-amz-date)."""
import json
import sys

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

given = json.load(sys.stdin)
request = AWSRequest(method=given["method"], url=given["url"],
                     data=bytes.fromhex(given["body_hex"]))
for name, value in given["headers"]:
    request.headers[name] = value
# The request's own time, rather than the clock now: add_auth would stamp a new one.
request.context["timestamp"] = given["amz_date"]
auth = SigV4Auth(Credentials(given["access_key"], given["secret_key"], given["token"]),
                 given["service"], given["region"])
canonical = auth.canonical_request(request)
print(auth.signature(auth.string_to_sign(request, canonical), request))
