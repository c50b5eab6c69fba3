#!/usr/bin/env python3
"""A PutEvents producer for test_http_ingest, built on boto3 and botocore's
own SigV4 signer (clients no one here wrote).

  http_client.py put URL KEY SECRET ENTRIES_JSON
      boto3's events client, pointed at URL; prints one JSON line:
      {"status": S, "region": X-Evbus-Region, "response": {...}} or
      {"status": S, "error": CODE, "message": M}. For an https URL it
      verifies the server's certificate against the CA file named in
      $HTTP_CLIENT_CA_BUNDLE (else the system's CAs). $HTTP_CLIENT_PAD=N
      makes each entry's Detail {"pad": N bytes} (large requests).
  http_client.py raw URL KEY SECRET BODY [tamper|skew=SECONDS|unsigned]
      signs BODY with botocore's SigV4Auth (service events, us-east-1) and
      sends it with http.client; `tamper` changes the body after signing,
      `skew=S` signs as if the clock were S seconds off; prints
      {"status": S, "type": X-Amzn-ErrorType, "body": "..."}.

Uses the default python3 (boto3 is installed there)."""
import datetime
import http.client
import json
import os
import sys
import urllib.parse


def put(url, key, secret, entries):
    import boto3
    import botocore.config
    import botocore.exceptions

    client = boto3.client(
        "events",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        verify=os.environ.get("HTTP_CLIENT_CA_BUNDLE") or True,
        config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}),
    )
    entries = json.loads(entries)
    pad = int(os.environ.get("HTTP_CLIENT_PAD") or 0)
    for e in entries if pad else []:
        e["Detail"] = json.dumps({"pad": "".join(chr(97 + i % 26) for i in range(pad))})
    try:
        r = client.put_events(Entries=entries)
    except botocore.exceptions.ClientError as e:
        meta = e.response.get("ResponseMetadata", {})
        print(json.dumps({"status": meta.get("HTTPStatusCode"),
                          "error": e.response["Error"]["Code"],
                          "message": e.response["Error"].get("Message", "")}))
        return
    meta = r.pop("ResponseMetadata")
    print(json.dumps({"status": meta["HTTPStatusCode"],
                      "region": meta["HTTPHeaders"].get("x-evbus-region"),
                      "response": r}))


def raw(url, key, secret, body, mode):
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials

    if mode.startswith("skew="):
        skew = datetime.timedelta(seconds=int(mode[5:]))
        real = botocore.auth.get_current_datetime
        botocore.auth.get_current_datetime = lambda *a, **k: real(*a, **k) + skew
    headers = {"Content-Type": "application/x-amz-json-1.1",
               "X-Amz-Target": "AWSEvents.PutEvents"}
    req = botocore.awsrequest.AWSRequest(method="POST", url=url + "/", data=body.encode(),
                                         headers=headers)
    if mode != "unsigned":
        creds = botocore.credentials.Credentials(key, secret)
        botocore.auth.SigV4Auth(creds, "events", "us-east-1").add_auth(req)
    prepared = req.prepare()
    data = prepared.body
    if mode == "tamper":
        data = data.replace(b"orders", b"ordersX")
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    hdrs = {k: v for k, v in prepared.headers.items()}
    hdrs["Content-Length"] = str(len(data))
    conn.request("POST", "/", body=data, headers=hdrs)
    resp = conn.getresponse()
    print(json.dumps({"status": resp.status, "type": resp.getheader("X-Amzn-ErrorType"),
                      "body": resp.read().decode("utf-8", "replace")}))


if __name__ == "__main__":
    if sys.argv[1] == "put":
        put(*sys.argv[2:6])
    else:
        raw(*sys.argv[2:6], sys.argv[6] if len(sys.argv) > 6 else "")
