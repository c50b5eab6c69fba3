/* Decoding a producer's evbus.v1.Publish without protobuf-c's generic
 * unpacker: the busiest decode in evbusd (every request of every producer),
 * where protobuf-c's table-driven unpack cost about 2,300 instructions per
 * one-event request and a second walk over the bytes looked for raw NULs.
 * This decoder fills protobuf-c's own generated structs, exactly as
 * evbus__v1__publish__unpack() of protobuf-c 1.4 would (same fields, same
 * unknown fields, same refusals), and finds the NULs in the same pass; the
 * fuzz target fuzz_publish checks both claims against protobuf-c and a walk
 * of the wire. */
#ifndef EVBUS_PUBLISH_DECODE_H
#define EVBUS_PUBLISH_DECODE_H

#include <stddef.h>

#include "evbus.pb-c.h"
#include "frame.h"

/* Decodes the Publish data[0..len) with `alloc` (every block of the result,
 * so evbus__v1__publish__free_unpacked() frees it with the same allocator).
 * Returns the request, or NULL when the bytes are not a message protobuf-c
 * would decode as a Publish, or when alloc failed. With `checks` non-NULL,
 * *checks receives one evbus__wire_check per event (allocated with alloc; at
 * least one element, so never NULL on success): the dotted name of the first
 * string field, in wire order, holding a raw NUL byte, or "id" whenever the
 * event's id holds one, and the NUL's offset in that field. */
Evbus__V1__Publish *evbus__publish_decode(ProtobufCAllocator *alloc, const void *data, size_t len,
                                          evbus__wire_check **checks);

#endif
