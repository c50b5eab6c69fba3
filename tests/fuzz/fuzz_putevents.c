/* Fuzz target: the body of an HTTP PutEvents request (http_putevents.h),
 * bytes from anyone who reaches ingest.http.listen. Decoding must either
 * refuse the whole request with a reason or give 1..10 entries whose strings
 * all point somewhere valid; the Publish built from them must pack and
 * unpack to the same events; and the answer encoded for them must be JSON.
 *
 * jansson is the oracle for what the decoder reads: when both accept a body,
 * each entry's Source, DetailType and Detail must be the strings jansson
 * reads there (unescaping, surrogate pairs). */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_putevents.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static evbus__putevents pe;
    char why[512];
    /* The decoder works in place: its own copy, of exactly the body's size
     * (for the address sanitizer to see any read past it). */
    char *body = malloc(size ? size : 1);
    memcpy(body, data, size);
    json_error_t oerr;
    json_t *oracle = json_loadb((const char *)data, size, 0, &oerr);
    if (!evbus__putevents_decode(body, size, &pe, why, sizeof why)) {
        if (!why[0])
            abort(); /* a refusal always says why */
        json_decref(oracle);
        free(body);
        return 0;
    }
    json_t *entries = json_object_get(oracle, "Entries");
    for (size_t i = 0; entries && i < pe.n; i++) {
        json_t *e = json_array_get(entries, i);
        const char *keys[] = {"Source", "DetailType", "Detail"};
        const char *got[] = {pe.events[i].source, pe.events[i].detail_type, pe.events[i].detail};
        for (size_t k = 0; k < 3; k++) {
            const char *want = json_string_value(json_object_get(e, keys[k]));
            if (strcmp(got[k], want ? want : "") != 0)
                abort();
        }
    }
    if (pe.n < 1 || pe.n > EVBUS__PUTEVENTS_MAX)
        abort();
    Evbus__V1__Event *evs[EVBUS__PUTEVENTS_MAX];
    evbus__putevents_result res[EVBUS__PUTEVENTS_MAX];
    for (size_t i = 0; i < pe.n; i++) {
        Evbus__V1__Event *e = &pe.events[i];
        if (!e->id || !e->source || !e->detail_type || !e->detail || !e->time)
            abort();
        /* An id resource is taken as the id, never stored as a resource,
         * unless the event has an id already. */
        for (size_t k = 0; k < e->n_resources; k++) {
            bool id_like = strncmp(e->resources[k], EVBUS__PUTEVENTS_ID_PREFIX,
                                   sizeof EVBUS__PUTEVENTS_ID_PREFIX - 1) == 0;
            if (id_like && !e->id[0] && !pe.early[i].code)
                abort();
        }
        evs[i] = e;
        res[i] = pe.early[i].code ? pe.early[i] : (evbus__putevents_result){.event_id = e->id};
        if (i % 2 && !res[i].code)
            res[i] = (evbus__putevents_result){.code = "InvalidArgument", .message = e->source};
    }
    Evbus__V1__Publish pub = EVBUS__V1__PUBLISH__INIT;
    pub.events = evs;
    pub.n_events = pe.n;
    size_t len = evbus__v1__publish__get_packed_size(&pub);
    uint8_t *buf = malloc(len ? len : 1);
    evbus__v1__publish__pack(&pub, buf);
    Evbus__V1__Publish *back = evbus__v1__publish__unpack(NULL, len, buf);
    if (!back || back->n_events != pe.n)
        abort();
    for (size_t i = 0; i < pe.n; i++)
        if (strcmp(back->events[i]->source, pe.events[i].source) != 0 ||
            strcmp(back->events[i]->detail, pe.events[i].detail) != 0 ||
            back->events[i]->n_resources != pe.events[i].n_resources)
            abort();
    evbus__v1__publish__free_unpacked(back, NULL);
    free(buf);
    size_t alen;
    char *answer = evbus__putevents_encode(res, pe.n, &alen);
    json_error_t jerr;
    json_t *j = answer ? json_loadb(answer, alen, 0, &jerr) : NULL;
    if (answer && !j)
        abort(); /* the answer must be JSON */
    json_decref(j);
    free(answer);
    evbus__putevents_clear(&pe);
    json_decref(oracle);
    free(body);
    return 0;
}
