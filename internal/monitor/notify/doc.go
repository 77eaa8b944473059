// Package notify is a region's SNS: topics, subscriptions and the delivery
// of messages to them (the domain behind package api/sns, and the
// notifier of CloudWatch alarm actions).
//
// Deliveries go to http and https endpoints as SNS sends them (a JSON
// document with the x-amz-sns-* headers), starting with the
// SubscriptionConfirmation handshake: the endpoint receives a Token and a
// SubscribeURL, and the subscription is confirmed when that URL is fetched
// (an unsigned GET, as on AWS) or ConfirmSubscription is called. Every
// message is signed (SignatureVersion 2, RSA with SHA-256, or 1 with SHA-1
// when a topic asks for it) with the region's signing key, whose
// certificate is served at SigningCertURL. Failed deliveries are retried
// following the topic's (or subscription's) delivery policy, with AWS's
// default when there is none. email and email-json subscriptions go
// through the SMTP relay of the region's config.
//
// Everything is durable before it is acknowledged: topics, subscriptions
// and each pending delivery are records in the store (keys under 'n'), so
// a message Publish accepted is delivered after a restart.
package notify
