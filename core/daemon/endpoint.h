/* What evbusd's listeners expose, and to whom.
 *
 * - The policy: a listener another machine can reach must authenticate who
 *   connects, or say in the configuration that it need not. Checked when the
 *   configuration is loaded, so `evbusd --check-config` refuses it too.
 * - Claims: ZeroMQ's ipc:// bind removes an existing socket file, so a second
 *   evbusd given the same path (with another data directory) would silently
 *   take the first one's socket. Every ipc:// endpoint is claimed before it is
 *   bound: an flock()ed PATH.lock next to the socket (race-free, released by
 *   the kernel when the holder dies, and it names the holder's pid), then a
 *   connect() to the path, which finds a holder that is not an evbusd taking
 *   the lock (another program, or an evbusd from before the lock). A tcp://
 *   endpoint needs neither: the kernel refuses a second listener
 *   (EADDRINUSE). The lock file is left in place on exit: unlinking it would
 *   let two processes lock two different files of the same name. */
#ifndef EVBUS_ENDPOINT_H
#define EVBUS_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* True for tcp://127.x.x.x:P, tcp://[::1]:P and tcp://localhost:P. Anything
 * else that is tcp:// (*, 0.0.0.0, an interface or a host name) is reachable
 * from elsewhere. */
bool evbus__endpoint_is_loopback(const char *endpoint);

/* The same for a bare HOST:PORT (metrics.listen). */
bool evbus__hostport_is_loopback(const char *hostport);

/* Checks the form of one ZeroMQ endpoint a listener binds, adding each
 * problem at `at` under `key` to `e`: only tcp:// and ipc://; a tcp:// port
 * from 1 to 65535 (libzmq would take 99999 modulo 65536 and bind another
 * port), or `*` / 0 (any free port, which evbusd logs once bound) when
 * `any_port` allows it; an ipc:// path that fits a socket address (107
 * bytes). Does not touch the file system. */
void evbus__endpoint_check(evbus__cfg_errors *e, const char *endpoint, evbus__cfg_pos at,
                           const char *key, bool any_port);

/* Checks that an ipc:// endpoint's directory exists (binding does not create
 * it), unless it is `data_dir`, which evbusd creates; adds the problem to
 * `e`. Other endpoints pass. */
void evbus__endpoint_check_ipc_dir(evbus__cfg_errors *e, const char *endpoint, evbus__cfg_pos at,
                                   const char *key, const char *data_dir);

/* Checks that the host of a tcp:// endpoint is something a listener can bind:
 * `*`, an IPv4 or IPv6 address, an interface name, or a host name that
 * resolves (a definite "no such name" from the resolver is the problem
 * added to `e`; a resolver that cannot answer now is not). Other endpoints
 * pass. May ask the resolver, so it belongs with the checks that touch the
 * system, not with the form check above. */
void evbus__endpoint_check_tcp_host(evbus__cfg_errors *e, const char *endpoint, evbus__cfg_pos at,
                                    const char *key);

/* Refuses a non-loopback ingest listener without CURVE unless
 * ingest.allow_unauthenticated, a non-loopback control listener without
 * control.curve, a non-loopback metrics listener unless
 * metrics.allow_unauthenticated, and half a CURVE section: each problem is
 * added to `e` at the key's place in the file, saying why and what to do. */
void evbus__endpoint_policy_check(const evbus__config *cfg, evbus__cfg_errors *e);

typedef struct evbus__ipc_claims evbus__ipc_claims;

/* Claims every ipc:// endpoint of cfg (ingest.listen, control.listen) for the
 * life of *out. Returns EVBUS_EBUSY with err naming the endpoint (and the pid
 * holding it, when it is an evbusd) when another live process holds one;
 * EVBUS_EIO when a lock file cannot be created. */
evbus_err evbus__ipc_claim_all(const evbus__config *cfg, evbus__ipc_claims **out, char *err,
                               size_t errlen);

/* Releases the claims; NULLs *c; accepts NULL. */
void evbus__ipc_claims_release(evbus__ipc_claims **c);

/* True when the directory holding an ipc:// socket is entered only by
 * evbusd's user (owned by it, no group or other permission bits), so no one
 * else can connect even in the instant before the socket's own mode is set. */
bool evbus__ipc_dir_private(const char *endpoint);

/* Makes a bound ipc:// socket file readable and writable by its owner only
 * (connecting needs write permission). Returns 0, or -1 with errno. */
int evbus__ipc_restrict(const char *endpoint);

#endif
