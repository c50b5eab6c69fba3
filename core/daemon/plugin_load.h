/* Loading a plugin shared object and checking its descriptor against the ABI
 * this evbusd speaks (include/evbus/plugin.h). */
#ifndef EVBUS_PLUGIN_LOAD_H
#define EVBUS_PLUGIN_LOAD_H

#include <stddef.h>

#include "evbus/plugin.h"

typedef struct evbus__plugin_lib {
    void *dl;
    const evbus_plugin *desc;
    char *path;
} evbus__plugin_lib;

/* The smallest descriptor of ABI 1.0: everything up to `shutdown`. */
#define EVBUS__PLUGIN_MIN_SIZE (offsetof(evbus_plugin, shutdown) + sizeof(void (*)(void *)))

/* The smallest descriptor of a selector (ABI 1.3): everything up to
 * `selector`, and the smallest table it points to. */
#define EVBUS__SELECTOR_MIN_SIZE     (offsetof(evbus_plugin, selector) + sizeof(void *))
#define EVBUS__SELECTOR_OPS_MIN_SIZE (offsetof(evbus_selector_ops, notify) + sizeof(void (*)(void)))

/* Opens `path`, finds its entry symbol and checks the descriptor: magic, ABI
 * major, size, kind (a sink or a selector: the caller checks which it
 * wants), name and callbacks. On failure returns
 * EVBUS_ECONFIG (or EVBUS_ENOMEM) with err saying what was expected and what
 * was found, and leaves nothing loaded. The caller owns *out
 * (evbus__plugin_close()). */
evbus_err evbus__plugin_open(const char *path, evbus__plugin_lib **out, char *err, size_t errlen);

/* Unloads; NULLs *lib; accepts NULL. No instance of it may be alive. */
void evbus__plugin_close(evbus__plugin_lib **lib);

#endif
