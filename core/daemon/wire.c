#include "wire.h"

void evbus__wire_init(evbus__wire *w, const void *data, size_t len) {
    w->p = data;
    w->end = w->p + len;
}

/* Reads a varint of at most ten bytes. Returns 0, or -1 when truncated or
 * longer than a 64-bit value can be. */
static int read_varint(evbus__wire *w, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (w->p >= w->end)
            return -1;
        unsigned char b = *w->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

static int skip(evbus__wire *w, uint64_t n) {
    if (n > (uint64_t)(w->end - w->p))
        return -1;
    w->p += n;
    return 0;
}

int evbus__wire_next(evbus__wire *w, evbus__wire_field *f) {
    if (w->p >= w->end)
        return 0;
    const unsigned char *start = w->p;
    uint64_t tag, len;
    if (read_varint(w, &tag) || (tag >> 3) == 0 || (tag >> 3) > UINT32_MAX)
        goto fail;
    f->number = (uint32_t)(tag >> 3);
    f->type = (unsigned)(tag & 7);
    f->varint = 0;
    f->data = NULL;
    f->len = 0;
    switch (f->type) {
    case EVBUS_WIRE_VARINT:
        if (read_varint(w, &f->varint))
            goto fail;
        return 1;
    case EVBUS_WIRE_FIXED64:
        if (skip(w, 8))
            goto fail;
        return 1;
    case EVBUS_WIRE_FIXED32:
        if (skip(w, 4))
            goto fail;
        return 1;
    case EVBUS_WIRE_LEN:
        if (read_varint(w, &len))
            goto fail;
        f->data = w->p;
        if (skip(w, len))
            goto fail;
        f->len = (size_t)len;
        return 1;
    default: goto fail; /* groups (3, 4) are not used by evbus.proto; 6, 7 do not exist */
    }
fail:
    w->p = start;
    return -1;
}
