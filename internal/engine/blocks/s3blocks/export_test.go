package s3blocks

// NewClientDialling is NewClient dialling with the test's function.
var NewClientDialling = newClient
