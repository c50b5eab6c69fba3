"""Setup and read-back for the AWS tests, through boto3 (a client no one
here wrote). Run with the default python3, which has boto3 and moto.

  aws_tool.py iam-user EP                      -> "KEY_ID SECRET" (free calls)
  aws_tool.py create-queue EP REGION NAME      -> queue URL (.fifo: FIFO)
  aws_tool.py receive EP REGION URL WANT SECS  -> JSON list of messages
  aws_tool.py delete-queue EP REGION URL
  aws_tool.py create-bus EP REGION NAME        -> the bus's ARN
  aws_tool.py bus-to-queue EP REGION BUS URL   -> a rule on BUS sending com.example*
                                                  events to the queue at URL
  aws_tool.py create-table EP REGION NAME      -> NAME (partition key id, type S)
  aws_tool.py delete-bus EP REGION NAME        (its rules and their targets with it)
  aws_tool.py assume-role EP N                 -> N lines "KEY_ID SECRET SESSION_TOKEN":
                                                  temporary credentials of a role that
                                                  may do anything (moto checks the token)

Credentials for everything but iam-user come from AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY, since moto checks signatures after the free calls.
"""
import json
import sys
import time

import boto3


def client(service, ep, region):
    return boto3.client(service, endpoint_url=ep, region_name=region)


def iam_user(ep):
    # These four calls are the free ones (INITIAL_NO_AUTH_ACTION_COUNT=4).
    iam = boto3.client("iam", endpoint_url=ep, region_name="us-east-1",
                       aws_access_key_id="setup", aws_secret_access_key="setup")
    iam.create_user(UserName="evbus")
    key = iam.create_access_key(UserName="evbus")["AccessKey"]
    doc = {"Version": "2012-10-17",
           "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    arn = iam.create_policy(PolicyName="evbus-all",
                            PolicyDocument=json.dumps(doc))["Policy"]["Arn"]
    iam.attach_user_policy(UserName="evbus", PolicyArn=arn)
    print(key["AccessKeyId"], key["SecretAccessKey"])


def create_queue(ep, region, name):
    attrs = {"FifoQueue": "true"} if name.endswith(".fifo") else {}
    print(client("sqs", ep, region).create_queue(QueueName=name, Attributes=attrs)["QueueUrl"])


def receive(ep, region, url, want, secs):
    sqs = client("sqs", ep, region)
    got = []
    end = time.time() + float(secs)
    while time.time() < end:
        r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                MessageAttributeNames=["All"],
                                AttributeNames=["All"], MessageSystemAttributeNames=["All"])
        msgs = r.get("Messages", [])
        for m in msgs:
            got.append({"body": json.loads(m["Body"]),
                        "attributes": {k: v["StringValue"]
                                       for k, v in m.get("MessageAttributes", {}).items()},
                        "group": m.get("Attributes", {}).get("MessageGroupId"),
                        "dedup": m.get("Attributes", {}).get("MessageDeduplicationId")})
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        if not msgs:
            if len(got) >= int(want):
                break
            time.sleep(0.1)
    print(json.dumps(got))


def bus_to_queue(ep, region, bus, url):
    arn = client("sqs", ep, region).get_queue_attributes(
        QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = client("events", ep, region)
    events.put_rule(Name="to-queue", EventBusName=bus,
                    EventPattern=json.dumps({"source": [{"prefix": "com.example"}]}))
    # A one-path input transformer that passes the whole event on, as a
    # target without one does: moto 5.2.1 applies a default transformer of
    # eight JSONPath expressions per event otherwise, building a parser for
    # each (about 33 ms apiece), so a 10-entry PutEvents took 3 to 9 s and
    # the sinks' requests timed out under load (see
    # plugins/eventbridge/README.md). Valid on real EventBridge too.
    target = {"Id": "q", "Arn": arn,
              "InputTransformer": {"InputPathsMap": {"id": "$.id"},
                                   "InputTemplate": "<aws.events.event.json>"}}
    events.put_targets(Rule="to-queue", EventBusName=bus, Targets=[target])


def delete_bus(ep, region, bus):
    # EventBridge refuses to delete a bus that still has rules.
    events = client("events", ep, region)
    for rule in events.list_rules(EventBusName=bus)["Rules"]:
        ids = [t["Id"] for t in events.list_targets_by_rule(
            Rule=rule["Name"], EventBusName=bus)["Targets"]]
        if ids:
            events.remove_targets(Rule=rule["Name"], EventBusName=bus, Ids=ids)
        events.delete_rule(Name=rule["Name"], EventBusName=bus)
    events.delete_event_bus(Name=bus)


def assume_role(ep, n):
    # A role the IAM user may assume, with the user's allow-all policy:
    # moto authorises a call signed with temporary credentials by the
    # policies of the role they belong to, and refuses a token that is not
    # the one issued with the key id.
    iam = client("iam", ep, "us-east-1")
    trust = {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"},
                            "Action": "sts:AssumeRole"}]}
    arn = iam.create_role(RoleName="evbus-sink",
                          AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    policy = [p["Arn"] for p in iam.list_policies(Scope="Local")["Policies"]
              if p["PolicyName"] == "evbus-all"][0]
    iam.attach_role_policy(RoleName="evbus-sink", PolicyArn=policy)
    sts = client("sts", ep, "us-east-1")
    for i in range(int(n)):
        c = sts.assume_role(RoleArn=arn, RoleSessionName="evbus-%d" % i)["Credentials"]
        print(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "iam-user":
        iam_user(*args)
    elif cmd == "create-queue":
        create_queue(*args)
    elif cmd == "receive":
        receive(*args)
    elif cmd == "delete-queue":
        client("sqs", args[0], args[1]).delete_queue(QueueUrl=args[2])
    elif cmd == "create-bus":
        print(client("events", args[0], args[1]).create_event_bus(Name=args[2])["EventBusArn"])
    elif cmd == "bus-to-queue":
        bus_to_queue(*args)
    elif cmd == "create-table":
        ddb = client("dynamodb", args[0], args[1])
        ddb.create_table(TableName=args[2], BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
        print(args[2])
    elif cmd == "delete-bus":
        delete_bus(*args)
    elif cmd == "assume-role":
        assume_role(*args)
    else:
        sys.exit("unknown command " + cmd)


main()
