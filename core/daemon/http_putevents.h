/* The EventBridge PutEvents request and answer (AWS JSON 1.1), mapped to and
 * from evbus's own Publish and Ack. Pure: no I/O, no threads.
 *
 * Request: {"Entries": [{"Source", "DetailType", "Detail", "Resources",
 * "Time", "EventBusName", "TraceHeader"}, ...]} with 1 to 10 entries. Each
 * entry becomes one evbus event: Source, DetailType and Detail as they are,
 * Time (epoch seconds, as SDKs send it, or an RFC 3339 string) as RFC 3339
 * UTC, Resources as they are, and EventBusName, when given, as the attribute
 * "event_bus_name" (evbus is one bus: any name is accepted).
 *
 * Idempotency: a resource "evbus:id/ID" gives the event the id ID (1 to 256
 * bytes) and is not stored among the resources. A retried request with the
 * same ids is answered as if stored (EventId: ID) but stored once, within
 * storage.dedup_window. Without it evbus makes a fresh id per event, as
 * EventBridge does. */
#ifndef EVBUS_HTTP_PUTEVENTS_H
#define EVBUS_HTTP_PUTEVENTS_H

#include <stdbool.h>
#include <stddef.h>

#include "evbus.pb-c.h"

/* EventBridge's limit on entries per request. */
#define EVBUS__PUTEVENTS_MAX 10
/* The resource prefix that carries a producer's own event id. */
#define EVBUS__PUTEVENTS_ID_PREFIX "evbus:id/"
/* Resources kept per entry (validate.h's EVBUS_RESOURCES_MAX, plus the id). */
#define EVBUS__PUTEVENTS_RESOURCES 101

/* One entry's answer. code NULL: success, event_id set. Strings are static
 * or owned by whoever filled the result, and must outlive the encoding. */
typedef struct evbus__putevents_result {
    const char *event_id;
    const char *code; /* EventBridge ErrorCode, e.g. "InvalidArgument" */
    const char *message;
} evbus__putevents_result;

/* A decoded request. Its strings point into the body it was decoded from. */
typedef struct evbus__putevents {
    size_t n; /* entries, 1..EVBUS__PUTEVENTS_MAX */
    Evbus__V1__Event events[EVBUS__PUTEVENTS_MAX];
    Evbus__V1__Attribute bus[EVBUS__PUTEVENTS_MAX];
    Evbus__V1__Attribute *bus_ptr[EVBUS__PUTEVENTS_MAX];
    char *resources[EVBUS__PUTEVENTS_MAX][EVBUS__PUTEVENTS_RESOURCES];
    char time[EVBUS__PUTEVENTS_MAX][64];
    /* Set by the decoder for entries that fail before evbus sees them
     * (code NULL: the entry goes to ingest). */
    evbus__putevents_result early[EVBUS__PUTEVENTS_MAX];
} evbus__putevents;

/* Decodes body[0..len) into *pe (which the caller allocated; it need not be
 * zeroed), in place: the strings the entries need are unescaped and
 * NUL-terminated inside body, and pe's strings point there, so body must
 * outlive pe and is no longer the text it was (check a signature over it
 * first). Allocates nothing (http_putevents_read.c).
 *
 * Returns true, or false with why saying what is wrong with the whole
 * request (answered as a ValidationException): not JSON (RFC 8259, UTF-8,
 * nested at most EVBUS_JSON_MAX_DEPTH deep), not an object, no Entries, not
 * 1..10 entries, an entry or field of the wrong type, a member of an entry
 * (or Entries) given twice, \u0000 in a string it reads, EndpointId (global
 * endpoints are not served). Members it does not know are skipped, unread.
 * Entry-level problems (a missing Source, an id too long) are left to
 * evbus's validation, or set in pe->early. */
bool evbus__putevents_decode(char *body, size_t len, evbus__putevents *pe, char *why,
                             size_t whylen);

/* Forgets a decoded request (it holds nothing of its own). Accepts a
 * cleared one. */
void evbus__putevents_clear(evbus__putevents *pe);

/* The PutEvents answer for an evbus per-event ack: ErrorCode and message for
 * a REJECTED or RETRY_LATER event, NULL code for ACCEPTED and DUPLICATE. */
void evbus__putevents_result_of(const Evbus__V1__EventAck *ack, evbus__putevents_result *out);

/* Writes the answer {"FailedEntryCount": N, "Entries": [...]} for n results
 * into a malloc'd string (caller frees) and its length. NULL when out of
 * memory. */
char *evbus__putevents_encode(const evbus__putevents_result *res, size_t n, size_t *len);

/* Writes an AWS JSON 1.1 error body {"__type": TYPE, "message": MESSAGE}
 * into a malloc'd string (caller frees). NULL when out of memory. */
char *evbus__putevents_error_body(const char *type, const char *message, size_t *len);

#endif
