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

/* Decodes one Publish payload and checks it against the configured limits
 * (size, wire version, events per request). Returns the request, allocated
 * with `alloc`, or NULL with a reason for the producer in err. *request_id
 * is set whenever the frame could be decoded, so that even a refusal can be
 * matched to its request. */
Evbus__V1__Publish *evbus__frame_decode(const evbus__config *cfg, ProtobufCAllocator *alloc,
                                        const void *data, size_t len, uint64_t *request_id,
                                        char *err, size_t errlen);

/* A growable byte buffer that encoded records are appended to. */
typedef struct evbus__bytes {
    unsigned char *data;
    size_t len, cap;
} evbus__bytes;

/* Makes room for `more` bytes after len. Returns 0, or -1 when out of
 * memory (the buffer is then unchanged). */
int evbus__bytes_reserve(evbus__bytes *b, size_t more);

/* Validates one event, fills in what a producer may leave out (id from `ids`
 * into gen_id, time `now_text`, origin region from the configuration; the
 * acceptance time `now_ms` always) and
 * appends the record the store keeps to `out`.
 * `filled` receives a shallow copy of the event with the defaults in place
 * (its strings point into `ev`, gen_id, now_text and cfg): what is stored,
 * and what rules match against. Returns 0 with *filled, *off and *len set; 1
 * when the event is invalid (why says why; filled->id is the event's own id);
 * -1 when out of memory. The event itself is not modified. */
int evbus__event_prepare(const evbus__config *cfg, const Evbus__V1__Event *ev, evbus__uuid_gen *ids,
                         int64_t now_ms, const char *now_text, char gen_id[37],
                         Evbus__V1__Event *filled, evbus__bytes *out, size_t *off, size_t *len,
                         char *why, size_t whylen);

#endif
