/* Stored event records decoded for delivery without protobuf-c's reflective
 * unpacker: the delivery thread decodes every record it sends, and the
 * generic unpacker (a descriptor lookup per field, a malloc per string
 * through the allocator, unknown fields kept) was a sixth of evbusd's own
 * work per delivered event. */
#ifndef EVBUS_EVENT_DECODE_H
#define EVBUS_EVENT_DECODE_H

#include <stddef.h>

#include "common/arena.h"
#include "evbus.pb-c.h"

/* Decodes the serialized evbus.v1.Event data[0..len) into a struct of
 * protobuf-c's type, as evbus__v1__event__unpack would: every string
 * NUL-terminated (an absent one ""), repeated fields in order, the last value
 * of a field sent twice, unknown fields skipped (not kept). Everything lives
 * in `arena` until its next reset; never free it with protobuf-c. Returns
 * NULL when the bytes are not a well-formed Event (a truncated field, a known
 * field of the wrong wire type) or when out of memory. */
Evbus__V1__Event *evbus__event_decode(evbus__arena *arena, const void *data, size_t len);

#endif
