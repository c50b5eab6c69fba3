"""Setup and read-back for the DynamoDB tests, through boto3 (a client no one
here wrote). Run with the default python3, which has boto3.

  ddb_tool.py create-table EP REGION TABLE KEY  (partition key KEY, type S)
  ddb_tool.py delete-table EP REGION TABLE
  ddb_tool.py items EP REGION TABLE             -> JSON list of the items,
      as DynamoDB answers them (numbers as {"N": "text"}, not converted)

Credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
"""
import json
import sys

import boto3


def client(ep, region):
    return boto3.client("dynamodb", endpoint_url=ep, region_name=region)


def create_table(ep, region, table, key):
    ddb = client(ep, region)
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": key, "KeyType": "HASH"}])
    ddb.get_waiter("table_exists").wait(TableName=table,
                                        WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})


def items(ep, region, table):
    ddb = client(ep, region)
    got, start = [], None
    while True:
        args = {"TableName": table, "ConsistentRead": True}
        if start:
            args["ExclusiveStartKey"] = start
        r = ddb.scan(**args)
        got.extend(r.get("Items", []))
        start = r.get("LastEvaluatedKey")
        if not start:
            break
    print(json.dumps(got))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "create-table":
        create_table(*args)
    elif cmd == "delete-table":
        client(args[0], args[1]).delete_table(TableName=args[2])
    elif cmd == "items":
        items(*args)
    else:
        sys.exit("unknown command " + cmd)


main()
