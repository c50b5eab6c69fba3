/* Decoding a producer's Publish frame and preparing each of its events for
 * the store. Pure functions of their input (no sockets, no storage), so that
 * the fuzzer drives exactly the code the daemon runs on untrusted bytes. */
#ifndef EVBUS_FRAME_H
#define EVBUS_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "config.h"
#include "evbus.pb-c.h"

#define EVBUS_WIRE_VERSION 1

/* What one event's bytes on the wire show that its decoded form cannot.
 * protobuf-c hands every string over as a NUL-terminated char *, so a raw NUL
 * byte inside one would silently end it early; evbus refuses such events. */
typedef struct evbus__wire_check {
    /* Dotted name of the string field holding a raw NUL byte ("source",
     * "attributes.value"), "" when none does; "id" whenever the id does. */
    char nul_field[40];
    size_t nul_at; /* the NUL's byte offset within that field */
} evbus__wire_check;

/* Decodes one Publish payload and checks it against the configured limits
 * (size, wire version, events per request). Returns the request, allocated
 * with `alloc`, or NULL with a reason for the producer in err. *request_id
 * is set whenever the frame could be decoded, so that even a refusal can be
 * matched to its request. *checks receives one evbus__wire_check per event,
 * in the request's order, also allocated with `alloc` (freed with the request
 * by freeing it with alloc->free). */
Evbus__V1__Publish *evbus__frame_decode(const evbus__config *cfg, ProtobufCAllocator *alloc,
                                        const void *data, size_t len, uint64_t *request_id,
                                        evbus__wire_check **checks, char *err, size_t errlen);

/* A growable byte buffer that encoded records are appended to. */
typedef struct evbus__bytes {
    unsigned char *data;
    size_t len, cap;
} evbus__bytes;

/* Makes room for `more` bytes after len. Returns 0, or -1 when out of
 * memory (the buffer is then unchanged). */
int evbus__bytes_reserve(evbus__bytes *b, size_t more);

/* Validates one event (`check`: what evbus__frame_decode found on the wire
 * for it; NULL when it did not come from the wire), fills in what a producer
 * may leave out (id from `ids` into gen_id, time `now_text`, origin region
 * from the configuration; the acceptance time `now_ms` always) and appends
 * the record the store keeps to `out`.
 * `filled` receives a shallow copy of the event with the defaults in place
 * (its strings point into `ev`, gen_id, now_text and cfg): what is stored,
 * and what rules match against. Returns 0 with *filled, *off and *len set; 1
 * when the event is invalid (why says why; filled->id is the event's own id
 * when it can be sent back in an ack as it came, valid UTF-8 without NUL
 * bytes, and "" otherwise: the ack then names the event by its index); -1
 * when out of memory. The event itself is not modified. */
int evbus__event_prepare(const evbus__config *cfg, const Evbus__V1__Event *ev,
                         const evbus__wire_check *check, evbus__uuid_gen *ids, int64_t now_ms,
                         const char *now_text, char gen_id[37], Evbus__V1__Event *filled,
                         evbus__bytes *out, size_t *off, size_t *len, char *why, size_t whylen);

#endif
