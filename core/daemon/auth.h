/* Who may publish and who may operate: evbusd's ZAP handler (ZeroMQ's
 * authentication protocol, RFC 27) and the key lists it answers from.
 *
 * Producers. With ingest.curve set, the ingest socket is a CURVE server and
 * every connection is put to the handler (domain "evbus-ingest"): a public key
 * listed in ingest.curve.authorized_keys is let in with the producer's NAME as
 * its ZeroMQ User-Id; any other key is refused (counted, and logged with the
 * public key, at most once a second). The receiver reads the User-Id of each
 * request (zmq_msg_gets(msg, "User-Id")) and looks the name up in the current
 * list: a name no longer listed (revoked since it connected) gets no answer,
 * and an event whose source the producer's limits do not cover is REJECTED.
 *
 * Operators. The control socket always has the domain "evbus-control", so
 * every connection comes to the handler, which says who is on the other end:
 *   "operator:NAME"  CURVE, a key listed in control.curve.operator_keys;
 *   "owner"          ipc://, a peer running as evbusd's user (or root), by
 *                    the peer credentials libzmq reports; when it reports
 *                    none, anyone who could reach a socket in a directory only
 *                    evbusd's user can enter;
 *   "local"          anything else allowed in: loopback tcp:// without CURVE.
 * ipc:// peers of other users and unknown CURVE keys are refused. The control
 * thread lets only owners and operators run commands that change state.
 *
 * The handler runs on a thread of its own rather than in the receiver's loop:
 * handshakes then never wait for a batch to be filled or committed, the
 * control socket is served while ingest is stopping, and the lists are
 * reloaded there (SIGHUP) without touching any connection. The receiver reads
 * the producers' list through a reference-counted snapshot, swapped on reload.
 *
 * Reloading re-reads the two key lists; the server secret keys are read once
 * at start-up (they are socket options of bound sockets). */
#ifndef EVBUS_AUTH_H
#define EVBUS_AUTH_H

#include <signal.h>
#include <stdint.h>

#include "auth_keys.h"
#include "config.h"

#define EVBUS__ZAP_DOMAIN_INGEST  "evbus-ingest"
#define EVBUS__ZAP_DOMAIN_CONTROL "evbus-control"

typedef struct evbus__auth evbus__auth;
typedef struct evbus__producers evbus__producers;
typedef struct evbus__producer_stats evbus__producer_stats;

/* Reads the key files of cfg and binds the ZAP handler's socket in zctx. Call
 * it before any socket of zctx binds: libzmq lets every CURVE client in when
 * no handler is bound. The caller keeps cfg and zctx alive until
 * evbus__auth_destroy(), which comes after the ingest and control sockets are
 * closed. err names the file and line of a bad key list, never a key. */
evbus_err evbus__auth_new(const evbus__config *cfg, void *zctx, evbus__auth **out, char *err,
                          size_t errlen);

/* Checks the key files of cfg without binding anything (--check-config).
 * Returns EVBUS_OK, or EVBUS_ECONFIG with one line in err per problem, each
 * "CONFIG:LINE:COL: KEY: what is wrong with the key file". */
evbus_err evbus__auth_check(const evbus__config *cfg, char *err, size_t errlen);

/* Starts the handler's thread. It reloads the key lists whenever *reload is
 * non-zero (and sets it back to 0). */
evbus_err evbus__auth_start(evbus__auth *a, volatile sig_atomic_t *reload);

/* Stops the thread, closes the socket, frees everything; NULLs *a; accepts
 * NULL. */
void evbus__auth_destroy(evbus__auth **a);

/* Makes `sock` a CURVE server for producers when ingest.curve is set (and
 * does nothing otherwise). Call before binding it. */
evbus_err evbus__auth_secure_ingest(evbus__auth *a, void *sock, char *err, size_t errlen);

/* Puts `sock` under the control domain, and makes it a CURVE server when
 * control.curve is set. Call before binding it. */
evbus_err evbus__auth_secure_control(evbus__auth *a, void *sock, char *err, size_t errlen);

/* True when the control peer that sent `msg` may change state ("owner" or
 * "operator:NAME"). */
bool evbus__auth_may_operate(void *msg);

/* The receiver's view of the producers. evbus__auth_producers() returns the
 * current list (NULL when producers are not authenticated), releasing `held`
 * when the list changed since; the caller releases the last one with
 * evbus__auth_producers_release(). Principals stay valid while their list is
 * held. Receiver thread only. */
const evbus__producers *evbus__auth_producers(evbus__auth *a, const evbus__producers *held);
void evbus__auth_producers_release(evbus__auth *a, const evbus__producers *p);

/* The producer that sent `msg` (a frame of a request), or NULL when its name
 * is no longer listed: then the request must get no answer; it is counted as
 * refused and logged (rate-limited). `msg` is a zmq_msg_t. */
const evbus__principal *evbus__auth_admit(evbus__auth *a, const evbus__producers *p, void *msg);

/* The principal's counters: stable for the life of `a`, across reloads. */
evbus__producer_stats *evbus__auth_stats_of(const evbus__principal *p);

/* True when the principal may publish `source`; otherwise why says so. */
bool evbus__auth_may_publish(const evbus__principal *p, const char *source, char *why,
                             size_t whylen);

/* Adds a request's outcomes to its producer's counters. Any thread. */
void evbus__producer_count(evbus__producer_stats *s, uint64_t accepted, uint64_t rejected);

/* {"producers":[{"name","authorized","accepted","rejected","refused"}...],
 *  "refused_connections":{"ingest":N,"control":N}}, for status and metrics.
 * Caller owns it (json_decref). Any thread. */
struct json_t;
struct json_t *evbus__auth_status(evbus__auth *a);

#endif
