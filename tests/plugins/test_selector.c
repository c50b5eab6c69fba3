/* A region selector written from <evbus/plugin.h> alone: every target goes
 * to the LAST region of its order, except while that region's routing
 * control is off (then the one before it). It proves the selector ABI is
 * enough to write another selector, and that evbusd follows whatever a
 * selector decides. */
#include <evbus/plugin.h>
#include <stdlib.h>

typedef struct state {
    const evbus_host_api *api;
    evbus_host *host;
} state;

static void route_all(state *s) {
    for (size_t t = 0; t < s->api->target_count(s->host); t++) {
        evbus_target_info ti = {.size = sizeof ti};
        if (s->api->target_info(s->host, t, &ti) != EVBUS_OK || ti.n_regions == 0)
            continue;
        size_t p = ti.n_regions - 1;
        evbus_region_info ri = {.size = sizeof ri};
        if (p > 0 && s->api->region_info(s->host, ti.regions[p], &ri) == EVBUS_OK &&
            !ri.routing_control_on)
            p--;
        evbus_route r = {.mode = EVBUS_ROUTE_ONE, .first = (uint32_t)p, .why = "test: the last"};
        s->api->set_route(s->host, t, &r);
    }
}

static void notify(void *st, evbus_selector_event ev, size_t index) {
    (void)ev;
    (void)index;
    route_all(st);
}

static evbus_err init(const evbus_host_api *api, evbus_host *host, void **out) {
    if (api->abi_minor < 3)
        return EVBUS_EINVAL;
    state *s = calloc(1, sizeof *s);
    if (!s)
        return EVBUS_ENOMEM;
    s->api = api;
    s->host = host;
    *out = s;
    route_all(s);
    api->log(host, EVBUS_LOG_LEVEL_INFO, "routing every target to its last region");
    return EVBUS_OK;
}

static void shutdown(void *st) {
    free(st);
}

static const evbus_selector_ops ops = {.size = sizeof ops, .notify = notify};

static const evbus_plugin descriptor = {
    .magic = EVBUS_PLUGIN_MAGIC,
    .abi_major = EVBUS_PLUGIN_ABI_MAJOR,
    .abi_minor = EVBUS_PLUGIN_ABI_MINOR,
    .size = sizeof(evbus_plugin),
    .kind = EVBUS_PLUGIN_SELECTOR,
    .name = "test-last-region",
    .version = "1",
    .description = "routes every target to its last region",
    .init = init,
    .shutdown = shutdown,
    .selector = &ops,
};

EVBUS_PLUGIN_EXPORT const evbus_plugin *evbus_plugin_entry(void);
EVBUS_PLUGIN_EXPORT const evbus_plugin *evbus_plugin_entry(void) {
    return &descriptor;
}
