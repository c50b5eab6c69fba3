/* Delivery results on their way from the dispatcher to the writer: one
 * message per finished batch, passed as a pointer over an inproc pipe. The
 * dispatcher allocates it; the writer commits the results and sends the
 * pointer back, and the dispatcher counts the batch out of its target's
 * window (unconfirmed) only then and frees it. So the window also bounds
 * what a crash can make it deliver twice: results not yet durable. (When evbusd stops, the
 * writer commits what is left and frees the messages itself.) */
#ifndef EVBUS_DISPATCH_MSG_H
#define EVBUS_DISPATCH_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* `target` of messages that are not a batch's results (operators' replay
 * and drop requests): the dispatcher counts nothing out of flight for them. */
#define EVBUS__MSG_NO_BATCH UINT32_MAX

typedef struct evbus__result_msg {
    uint32_t target; /* the batch's target, or EVBUS__MSG_NO_BATCH */
    uint32_t lane;   /* policy replicate: the batch's lane + 1 (dispatch_replicate.c); 0: none */
    size_t n, cap;
    evbus__store_result *v; /* reasons point into `text` once sealed */
    size_t *reason_at;      /* offsets in `text` until then */
    char *text;
    size_t text_len, text_cap;
    /* An audit event to accept with these results, in the same commit
     * (audit.h): its detail-type and detail JSON (heap, freed with the
     * message; set with evbus__result_msg_audit); NULL for none. */
    char *audit_type, *audit_detail;
} evbus__result_msg;

/* A message with room for `cap` results; NULL when out of memory. */
evbus__result_msg *evbus__result_msg_new(size_t cap);

/* Appends a result, copying its reason (at most 1 KiB). Ignored when full or
 * out of memory (the entry then stays pending: delivered again later). */
void evbus__result_msg_add(evbus__result_msg *m, const evbus__store_result *r, const char *reason);

/* Points every result's reason into the text; call once, before sending. */
void evbus__result_msg_seal(evbus__result_msg *m);

/* Attaches an audit event (copied). Returns false when out of memory. */
bool evbus__result_msg_audit(evbus__result_msg *m, const char *detail_type, const char *detail);

/* Frees; accepts NULL. */
void evbus__result_msg_free(evbus__result_msg *m);

/* Sends the pointer m over ZeroMQ socket `sock` (an inproc pipe without a
 * high-water mark), blocking, and again after a signal interrupted the
 * send (EINTR). True when sent: the receiver owns m. False only when the
 * context is ending (ETERM) or the socket is unusable; m stays the
 * caller's. Used both ways: a message the writer fails to hand back would
 * keep its batch counted in the target's window (unconfirmed) for ever. */
bool evbus__result_msg_send(void *sock, evbus__result_msg *m);

#endif
