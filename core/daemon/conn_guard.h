/* Keeps producers' connections from using up evbusd's file descriptors.
 *
 * Anyone who reaches an ingest endpoint can open connections that never
 * finish a handshake (no key is needed to send a ZMTP greeting). Each one
 * holds a descriptor; once RLIMIT_NOFILE is reached, libzmq 4.3.4's ipc
 * listener aborts the whole process on EMFILE (ipc_listener.cpp asserts;
 * its tcp listener tolerates it), and the store, plugins and control socket
 * cannot open anything either.
 *
 * libzmq has no limit on accepted connections, so the guard keeps one: a
 * socket monitor on the ingest socket reports each accepted connection
 * (with its descriptor) and each disconnection, in order; a connection
 * accepted while `limit` others are open is shut down at once
 * (shutdown(2), not close: the descriptor stays libzmq's, which then sees
 * the end of the stream and closes it as for any peer that left). Producers
 * already connected keep working; new ones get in again as soon as others
 * leave. Half-handshakes leave after ingest.handshake_timeout by themselves.
 *
 * The limit is ingest.max_connections, but never more than half the
 * descriptors the process may open, so that a flood arriving faster than
 * the guard refuses it still leaves room for everything else.
 *
 * It relies on libzmq reporting a disconnection before it closes the
 * descriptor (stream_engine_base.cpp: event_disconnected, then close), and
 * on one I/O thread (evbusd's default), so that a descriptor is never seen
 * reused before its disconnection. */
#ifndef EVBUS_CONN_GUARD_H
#define EVBUS_CONN_GUARD_H

#include <stddef.h>
#include <stdint.h>

#include "evbus/error.h"

typedef struct evbus__conn_guard evbus__conn_guard;

/* Starts monitoring `sock` (a ZeroMQ socket in context zctx, not yet bound)
 * on a thread of its own, allowing at most min(max_connections, half of
 * RLIMIT_NOFILE) accepted connections at once; logs the limit. Must be
 * called on the thread that owns sock. The caller owns *out
 * (evbus__conn_guard_stop()). EVBUS_EZMQ / EVBUS_ENOMEM, with err saying
 * why. */
evbus_err evbus__conn_guard_start(void *zctx, void *sock, uint64_t max_connections,
                                  evbus__conn_guard **out, char *err, size_t errlen);

/* Connections open now, and refused since start. Safe from any thread. */
void evbus__conn_guard_counts(evbus__conn_guard *g, uint64_t *open, uint64_t *refused);

/* Stops the thread and frees the guard; NULLs *g; accepts NULL. Call before
 * the monitored socket is closed. */
void evbus__conn_guard_stop(evbus__conn_guard **g);

#endif
