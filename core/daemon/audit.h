/* Audit events: every routing-control change and application-state
 * transition an operator makes is itself accepted as an event with source
 * `evbus.region`, routed by the rules and delivered like any other.
 *
 *   detail-type  "Routing Control Changed" | "Application State Changed" |
 *                "Region Route Changed" (the selector's decisions: by "selector:NAME",
 *                made by the delivery thread through the same result message)
 *   detail       {"region"|"target": NAME, "from": ..., "to": ..., "by": WHO,
 *                 "why": COMMAND [ + ": " REASON], "time": RFC 3339}
 *
 * Why the writer makes them, in the same transaction as the change: the
 * control thread has no ingest path of its own, and a second path into the
 * receiver (an inproc socket acting as a producer) would commit the event
 * and the state change separately, so a crash between the two loses one or
 * the other. Instead the control thread attaches the event's description to
 * the result message that carries the state change (dispatch_msg.h); the
 * writer, which commits that message, prepares the event exactly as the
 * receiver prepares a producer's (validation, id, record, the same rules)
 * and appends it in the same evbus__store_append call. Both are durable
 * together, or neither is.
 *
 * Exactly once: the event's id is fixed when the writer first takes the
 * message. Should the store refuse the event while the state change still
 * commits (map or disk full: results may use the reserve, events may not),
 * the writer keeps it and tries again with every later commit under the
 * same id, so deduplication turns any repeat into a DUPLICATE, never into a
 * second event. Owned by the writer thread; nothing here is shared. */
#ifndef EVBUS_AUDIT_H
#define EVBUS_AUDIT_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "routing.h"
#include "store.h"

#define EVBUS__AUDIT_SOURCE "evbus.region"

typedef struct evbus__audit evbus__audit;

/* `router` may be NULL (no rules: audit events then go nowhere but are
 * still stored). NULL when out of memory. */
evbus__audit *evbus__audit_new(const evbus__config *cfg, const evbus__router *router);

/* Frees; NULLs *a; accepts NULL. */
void evbus__audit_destroy(evbus__audit **a);

/* Queues one audit event (copied; it gets its id now). Returns false when
 * out of memory (logged: the change itself is still stored). */
bool evbus__audit_add(evbus__audit *a, const char *detail_type, const char *detail);

/* Whether events wait to be stored. */
bool evbus__audit_waiting(const evbus__audit *a);

/* The items to append: the batch's `n` items followed by one per waiting
 * audit event. Without waiting events, `items` itself. The array is valid
 * until the next call; evbus__audit_done() copies outcomes back. */
evbus__store_item *evbus__audit_items(evbus__audit *a, evbus__store_item *items, size_t n,
                                      int64_t now_ms, size_t *total);

/* After the append: copies the batch items' outcomes back into `items` and
 * forgets the audit events stored (or found stored already). Returns
 * whether any audit event added a pending entry. */
bool evbus__audit_done(evbus__audit *a, evbus__store_item *items, size_t n);

/* After an append that failed as a whole (nothing of it is stored, the
 * state changes included): forgets the waiting events, logged. */
void evbus__audit_forget(evbus__audit *a);

#endif
