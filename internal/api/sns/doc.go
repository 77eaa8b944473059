// Package sns serves the SNS API (signing name sns, awsQuery protocol) of
// one region over package monitor/notify: CreateTopic, DeleteTopic,
// ListTopics, GetTopicAttributes, SetTopicAttributes, Subscribe,
// ConfirmSubscription, Unsubscribe, ListSubscriptions,
// ListSubscriptionsByTopic, GetSubscriptionAttributes,
// SetSubscriptionAttributes and Publish, one file each.
//
// Public serves what subscribers reach without signing, as on AWS: the
// SubscribeURL (GET /?Action=ConfirmSubscription&TopicArn=…&Token=…), the
// UnsubscribeURL (GET /?Action=Unsubscribe&SubscriptionArn=…) and the
// signing certificate (GET /SimpleNotificationService-….pem).
package sns
