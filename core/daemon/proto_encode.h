/* The two messages evbusd writes for every event it takes in, the record it
 * stores and the Ack it answers with, written without protobuf-c's generic
 * table-driven packer: the very bytes evbus__v1__event__pack() and
 * evbus__v1__ack__pack() write (fields in number order; proto3's empty
 * strings, zeros and false left out; repeated and unknown fields as they
 * are), at a fraction of their cost. fuzz_publish checks both against
 * protobuf-c on every request it decodes. */
#ifndef EVBUS_PROTO_ENCODE_H
#define EVBUS_PROTO_ENCODE_H

#include <stddef.h>

#include "evbus.pb-c.h"
#include "frame.h"

/* Appends the serialized event e to out. Returns 0 with *len the bytes
 * appended (what evbus__v1__event__get_packed_size() would say), or -1 when
 * out of memory (out unchanged). */
int evbus__event_encode(const Evbus__V1__Event *e, evbus__bytes *out, size_t *len);

/* The size of the serialized Ack a (what evbus__v1__ack__get_packed_size()
 * says). Unknown fields of a and its results are not written: evbusd's Acks
 * have none. */
size_t evbus__ack_size(const Evbus__V1__Ack *a);
/* Writes the serialized Ack a, evbus__ack_size(a) bytes, to out. */
void evbus__ack_encode(const Evbus__V1__Ack *a, unsigned char *out);

#endif
