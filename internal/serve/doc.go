// Package serve is the one lifecycle every regionfs server has — the NFS
// server and mount targets, the region API, the edge, the replication
// endpoint, regionfs dev's control socket — which is net/http's:
//
//   - Serve(ctx, ln) accepts on ln until Shutdown, then returns
//     ErrServerClosed (any other error is the listener's). ctx is the parent
//     of every request's context; it never stops the server by itself.
//   - Shutdown(ctx) stops accepting, lets work in flight finish until ctx
//     ends, then closes what remains.
//
// HTTP is the HTTP server the HTTP ones share (timeouts, TLS, HTTP/2, the
// error log), WithMetrics their /metrics beside the handler, and Start
// runs any such server in the background for a command and stops it
// again.
package serve
