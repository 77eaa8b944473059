"""Every SNS operation through boto3 (query protocol), run by sdk_test.go."""
import json
import os
import sys
import time
import urllib.request

import boto3
import botocore.exceptions

sns = boto3.client("sns", endpoint_url=os.environ["ENDPOINT"])


def check(cond, what):
    if not cond:
        sys.exit("FAIL " + what)


arn = sns.create_topic(Name="boto", Attributes={"DisplayName": "Boto"}, Tags=[{"Key": "k", "Value": "v"}])["TopicArn"]
check(arn == "arn:aws:sns:us-east-1:123456789012:boto", arn)
check(sns.create_topic(Name="boto", Attributes={"DisplayName": "Boto"})["TopicArn"] == arn, "idempotent")
check(arn in [t["TopicArn"] for t in sns.list_topics()["Topics"]], "list_topics")
sns.set_topic_attributes(TopicArn=arn, AttributeName="DeliveryPolicy",
                         AttributeValue=json.dumps({"http": {"defaultHealthyRetryPolicy": {"minDelayTarget": 1, "maxDelayTarget": 5, "numRetries": 2}}}))
attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
check(attrs["DisplayName"] == "Boto" and "minDelayTarget" in attrs["EffectiveDeliveryPolicy"], str(attrs))
r = sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=os.environ["SUBSCRIBER"] + "/boto", ReturnSubscriptionArn=True)
sub = r["SubscriptionArn"]
check(sub.startswith(arn + ":"), sub)
for _ in range(100):
    subs = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    if subs and subs[0]["SubscriptionArn"] == sub:
        break
    time.sleep(0.1)
else:
    sys.exit("FAIL subscription not confirmed: %s" % subs)
check(any(s["SubscriptionArn"] == sub for s in sns.list_subscriptions()["Subscriptions"]), "list_subscriptions")
sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="RawMessageDelivery", AttributeValue="true")
check(sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]["RawMessageDelivery"] == "true", "subscription attributes")
mid = sns.publish(TopicArn=arn, Message=json.dumps({"default": "d", "http": "h"}), MessageStructure="json", Subject="subject",
                  MessageAttributes={"n": {"DataType": "Number", "StringValue": "42"}})["MessageId"]
check(len(mid) == 36, mid)
try:
    sns.confirm_subscription(TopicArn=arn, Token="bad")
    sys.exit("FAIL bad token accepted")
except botocore.exceptions.ClientError as e:
    check(e.response["Error"]["Code"] == "InvalidParameter", str(e.response))
sns.unsubscribe(SubscriptionArn=sub)
try:
    sns.publish(TopicArn=arn, Message="x" * (256 * 1024 + 1))
    sys.exit("FAIL oversized message accepted")
except botocore.exceptions.ClientError as e:
    check(e.response["Error"]["Code"] == "InvalidParameter", str(e.response))
sns.delete_topic(TopicArn=arn)
print("ok")
