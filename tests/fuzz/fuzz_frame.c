/* Fuzz target: the bytes a producer sends. Decodes a Publish under the
 * default limits and prepares every event exactly as evbusd does; every
 * record it produces must decode again and keep the event's id. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "config.h"
#include "frame.h"

static void *arena_alloc(void *data, size_t size) {
    return evbus__arena_alloc(data, size);
}
static void arena_free(void *data, void *ptr) {
    (void)data;
    (void)ptr;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static evbus__config cfg;
    static int ready;
    static evbus__uuid_gen ids;
    if (!ready) {
        evbus__config_defaults(&cfg);
        evbus__uuid_gen_init(&ids);
        ready = 1;
    }
    evbus__arena arena;
    evbus__arena_init(&arena, 64 * 1024);
    ProtobufCAllocator alloc = {arena_alloc, arena_free, &arena};
    char err[256];
    uint64_t request_id = 0;
    Evbus__V1__Publish *pub =
        evbus__frame_decode(&cfg, &alloc, data, size, &request_id, err, sizeof err);
    if (!pub) {
        if (!err[0])
            abort(); /* a refusal must say why */
    } else {
        evbus__bytes records = {0};
        for (size_t i = 0; i < pub->n_events; i++) {
            char gen_id[37], why[256];
            Evbus__V1__Event filled;
            size_t off, len;
            int rc = evbus__event_prepare(&cfg, pub->events[i], &ids, 1795456460000,
                                          "2026-11-23T17:44:20Z", gen_id, &filled, &records, &off,
                                          &len, why, sizeof why);
            if (rc == 1 && !why[0])
                abort();
            if (rc != 0)
                continue;
            Evbus__V1__Event *back = evbus__v1__event__unpack(NULL, len, records.data + off);
            if (!back || strcmp(back->id, filled.id) != 0 || !back->time[0])
                abort();
            evbus__v1__event__free_unpacked(back, NULL);
        }
        free(records.data);
    }
    evbus__arena_destroy(&arena);
    return 0;
}
