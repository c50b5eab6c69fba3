/* The control socket: operators' commands (evbus status, evbus dlq ...) on a
 * ZeroMQ REP socket, one JSON request and one JSON answer at a time, served
 * by a thread of its own that only reads shared state through thread-safe
 * getters and short LMDB read transactions.
 *
 * Requests: {"cmd":"status"}, {"cmd":"dlq","target":"NAME","limit":N},
 * {"cmd":"dlq-show","target":"NAME","sequence":N},
 * {"cmd":"dlq-replay","target":"NAME"}, {"cmd":"dlq-drop","target":"NAME"} and
 * {"cmd":"replay","target":"NAME","since_ms":T}.
 * Answers: {"ok":true,...} or {"ok":false,"error":"..."}. In the status,
 * each target has "region", the region it delivers to now, and "regions",
 * every region it has an instance in, in order of preference.
 *
 * dlq-replay, dlq-drop and replay change state: they are answered only for
 * the socket's owner (ipc://) or an operator (tcp:// with CURVE); see
 * auth.h. */
#ifndef EVBUS_CONTROL_H
#define EVBUS_CONTROL_H

#include "auth.h"
#include "config.h"
#include "dispatch.h"
#include "ingest.h"
#include "store.h"

typedef struct evbus__control evbus__control;

/* Binds cfg->control_listen and starts the thread. `auth` (may be NULL: then
 * no command that changes state is allowed) says who a peer is; an ipc://
 * socket is made 0600. The caller keeps every argument alive until
 * evbus__control_destroy(). */
evbus_err evbus__control_start(const evbus__config *cfg, evbus__store *store, evbus__ingest *ingest,
                               evbus__dispatch *dispatch, evbus__auth *auth, void *zctx,
                               evbus__control **out, char *err, size_t errlen);

/* Stops the thread and closes the socket; NULLs *c; accepts NULL. */
void evbus__control_destroy(evbus__control **c);

/* Adds the HTTP ingest's counters to the status document (as "http") from
 * now on. The caller keeps `counters` alive until evbus__control_destroy(). */
struct evbus__http_counters;
void evbus__control_set_http(evbus__control *c, const struct evbus__http_counters *counters);

/* The status document (the answer to "status"), for the metrics endpoint
 * too. Caller owns the result (json_decref). */
struct json_t;
struct json_t *evbus__control_status(evbus__control *c);

/* A JSON string of `s` (NUL-terminated), for text that comes from plugins or
 * the store: jansson refuses invalid UTF-8 (json_pack then fails, and the
 * entry holding it would silently be left out of an answer), so bytes that
 * are not UTF-8 become U+FFFD. Caller owns the result; NULL only when out of
 * memory. */
struct json_t *evbus__control_text(const char *s);

#endif
