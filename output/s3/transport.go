package s3

// maxResponseBytes bounds the body read from the store. PutObject answers with headers and at
// most a short XML error; a larger response comes from a broken or hostile endpoint and is
// refused without being read to its end. The request-body race this package's uploads would
// otherwise meet is handled by awsx.Client.
const maxResponseBytes = 1 << 20
