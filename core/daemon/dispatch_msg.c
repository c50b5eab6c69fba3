#include "dispatch_msg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

evbus__result_msg *evbus__result_msg_new(size_t cap) {
    evbus__result_msg *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->v = calloc(cap ? cap : 1, sizeof *m->v);
    m->reason_at = calloc(cap ? cap : 1, sizeof *m->reason_at);
    if (!m->v || !m->reason_at) {
        evbus__result_msg_free(m);
        return NULL;
    }
    m->cap = cap;
    return m;
}

void evbus__result_msg_add(evbus__result_msg *m, const evbus__store_result *r, const char *reason) {
    if (m->n == m->cap)
        return;
    size_t len = reason ? strnlen(reason, 1024) : 0;
    if (m->text_len + len + 1 > m->text_cap) {
        size_t cap = m->text_cap ? m->text_cap * 2 : 256;
        while (cap < m->text_len + len + 1)
            cap *= 2;
        char *t = realloc(m->text, cap);
        if (!t)
            return;
        m->text = t;
        m->text_cap = cap;
    }
    char *dst = m->text + m->text_len;
    if (len)
        memcpy(dst, reason, len);
    dst[len] = '\0';
    m->text_len += len + 1;
    m->v[m->n] = *r;
    m->v[m->n].reason = NULL;
    m->reason_at[m->n] = m->text_len - len - 1;
    m->n++;
}

void evbus__result_msg_seal(evbus__result_msg *m) {
    for (size_t i = 0; i < m->n; i++)
        m->v[i].reason = m->text + m->reason_at[i];
}

bool evbus__result_msg_audit(evbus__result_msg *m, const char *detail_type, const char *detail) {
    free(m->audit_type);
    free(m->audit_detail);
    m->audit_type = strdup(detail_type);
    m->audit_detail = strdup(detail);
    return m->audit_type && m->audit_detail;
}

void evbus__result_msg_free(evbus__result_msg *m) {
    if (!m)
        return;
    free(m->audit_type);
    free(m->audit_detail);
    free(m->v);
    free(m->reason_at);
    free(m->text);
    free(m);
}

bool evbus__result_msg_send(void *sock, evbus__result_msg *m) {
    for (;;) {
        if (zmq_send(sock, &m, sizeof m, 0) == (int)sizeof m)
            return true;
        if (errno != EINTR)
            return false;
    }
}
