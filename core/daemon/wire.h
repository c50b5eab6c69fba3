/* Reading protobuf's wire format one field at a time, for what protobuf-c's
 * decoded structs do not keep: the exact bytes and length of each string as
 * it was sent (protobuf-c hands strings over NUL-terminated, so a raw NUL
 * byte inside one would end it early). */
#ifndef EVBUS_WIRE_H
#define EVBUS_WIRE_H

#include <stddef.h>
#include <stdint.h>

/* Wire types (the low three bits of a field's tag). */
#define EVBUS_WIRE_VARINT  0
#define EVBUS_WIRE_FIXED64 1
#define EVBUS_WIRE_LEN     2
#define EVBUS_WIRE_FIXED32 5

/* A cursor over one serialized message. Initialise with evbus__wire_init();
 * it points into the caller's bytes, which must outlive it. */
typedef struct evbus__wire {
    const unsigned char *p, *end;
} evbus__wire;

/* One field as read: its number and wire type, and its value. */
typedef struct evbus__wire_field {
    uint32_t number;
    unsigned type;             /* EVBUS_WIRE_* */
    uint64_t varint;           /* EVBUS_WIRE_VARINT: the value */
    const unsigned char *data; /* EVBUS_WIRE_LEN: the bytes (not NUL-terminated) */
    size_t len;                /* EVBUS_WIRE_LEN: their length */
} evbus__wire_field;

/* Starts reading the message data[0..len). */
void evbus__wire_init(evbus__wire *w, const void *data, size_t len);

/* Reads the next field into *f. Returns 1 when a field was read, 0 at the
 * end of the message, -1 when the bytes are not a well-formed message
 * (truncated field, over-long varint, field number 0, group or unknown wire
 * type); the cursor is then left where the problem was. */
int evbus__wire_next(evbus__wire *w, evbus__wire_field *f);

#endif
