// Package cfn is the CloudFormation domain of a region: templates (JSON and
// YAML with every short-form tag), their structural validation, intrinsic
// functions, conditions and parameters, and the stack engine that creates,
// updates and deletes stacks through resource providers.
//
// # Templates
//
// ParseTemplate decodes a body into plain values (YAML short forms become
// their long forms; anchors, aliases, merge keys and unknown tags are
// refused) and checks it as CloudFormation does before any stack exists:
// sections, parameter declarations, resource attributes, known resource
// types, function shapes, references to parameters, resources, attributes,
// mappings and conditions, and dependency cycles. Errors are *Error values
// with CloudFormation's ValidationError messages ("Template format error:
// …", "Template error: …"). Property names and values are checked when a
// resource is provisioned, against its type's documented schema, with the
// resource provider framework's message ("Properties validation failed for
// resource X with message: #: extraneous key [Foo] is not permitted").
//
// # Stacks
//
// A stack operation (create, update, delete, and their rollbacks) runs in a
// worker per stack. Resources whose dependencies are done are provisioned
// in parallel (at most 8 at a time). An update adds, updates in place or
// replaces each resource by comparing resolved properties with the stored
// ones; a property marked Replace in the type's schema replaces the
// resource (the old physical resource is deleted in the cleanup phase). A
// failure rolls back: a failed create deletes everything it made (the stack
// ends ROLLBACK_COMPLETE, or is deleted with OnFailure DELETE); a failed
// update restores changed properties, deletes what it added and keeps the
// old physical resources it was replacing. Deletion goes in reverse
// dependency order and honours DeletionPolicy/UpdateReplacePolicy Retain.
//
// Every state change (a resource's status, physical id, properties and
// return values; the stack's status; an event) is one synced KV batch
// before the next step. An operation interrupted by a restart resumes at
// Open from the stored state: each resource creation carries a token
// derived from the stack, resource and operation, and providers are
// idempotent under it, so a resource whose creation was under way is found
// instead of created twice.
//
// CreateStack, UpdateStack, DeleteStack and ExecuteChangeSet are
// idempotent under a ClientRequestToken; a change set is computed when it
// is created (CREATE_COMPLETE, or FAILED with CloudFormation's reason when
// it holds no change). Exports are unique per region; an export in use by
// another stack's Fn::ImportValue cannot be removed or changed.
//
// # Keys (under 'o' of the server's store; values are JSON)
//
//	'o' 's' stack id           stack: template, parameters, outputs, resources, operation under way
//	'o' 'e' stack id 0 seq(8)  event
//	'o' 'c' change set id      change set
//
// Deleted stacks stay describable by id, and listed, for 90 days.
package cfn
