#include "plugin_load.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int valid_name(const char *s) {
    if (!s || !*s || strlen(s) > 64)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

/* The descriptor checks, in the order a person would want to hear them. */
static int check(const char *path, const evbus_plugin *d, char *err, size_t errlen) {
    if (d->magic != EVBUS_PLUGIN_MAGIC) {
        snprintf(err, errlen,
                 "%s: not an evbus plugin: descriptor magic is 0x%08x, expected 0x%08x", path,
                 d->magic, EVBUS_PLUGIN_MAGIC);
        return -1;
    }
    if (d->abi_major != EVBUS_PLUGIN_ABI_MAJOR) {
        snprintf(err, errlen,
                 "%s: plugin was built for evbus plugin ABI %u.%u; this evbusd speaks %d.x "
                 "(rebuild the plugin against this version's <evbus/plugin.h>)",
                 path, d->abi_major, d->abi_minor, EVBUS_PLUGIN_ABI_MAJOR);
        return -1;
    }
    if (d->size < EVBUS__PLUGIN_MIN_SIZE) {
        snprintf(err, errlen,
                 "%s: plugin descriptor is %u bytes; ABI %d.0 needs at least %zu (a truncated "
                 "or hand-made struct?)",
                 path, d->size, EVBUS_PLUGIN_ABI_MAJOR, (size_t)EVBUS__PLUGIN_MIN_SIZE);
        return -1;
    }
    if (d->kind != EVBUS_PLUGIN_SINK && d->kind != EVBUS_PLUGIN_SELECTOR) {
        snprintf(err, errlen,
                 "%s: plugin kind is %d; this evbusd loads sinks (%d) and selectors (%d)", path,
                 (int)d->kind, (int)EVBUS_PLUGIN_SINK, (int)EVBUS_PLUGIN_SELECTOR);
        return -1;
    }
    if (!valid_name(d->name)) {
        snprintf(err, errlen, "%s: plugin name must be 1 to 64 of [a-z0-9_-]", path);
        return -1;
    }
    if (d->kind == EVBUS_PLUGIN_SELECTOR) {
        /* The selector field came with ABI 1.3, in a reserved slot: older
         * descriptors cannot be selectors. */
        if (d->abi_minor < 3 || d->size < EVBUS__SELECTOR_MIN_SIZE || !d->selector ||
            d->selector->size < EVBUS__SELECTOR_OPS_MIN_SIZE || !d->selector->notify || !d->init ||
            !d->shutdown) {
            snprintf(err, errlen,
                     "%s: selector %s needs ABI 1.3 or later, init, shutdown and a selector "
                     "table with notify (it has ABI %u.%u)",
                     path, d->name, d->abi_major, d->abi_minor);
            return -1;
        }
        return 0;
    }
    if (!d->init || !d->submit || !d->shutdown) {
        snprintf(err, errlen,
                 "%s: plugin %s lacks a callback (init, submit and shutdown are required)", path,
                 d->name);
        return -1;
    }
    if (d->max_batch_events == 0) {
        snprintf(err, errlen, "%s: plugin %s declares max_batch_events 0", path, d->name);
        return -1;
    }
    for (const evbus_config_key *k = d->config_keys; k && k->name; k++) {
        if (k->type < EVBUS_CONFIG_STRING || k->type > EVBUS_CONFIG_DURATION) {
            snprintf(err, errlen, "%s: plugin %s declares config key '%s' with unknown type %d",
                     path, d->name, k->name, (int)k->type);
            return -1;
        }
    }
    return 0;
}

evbus_err evbus__plugin_open(const char *path, evbus__plugin_lib **out, char *err, size_t errlen) {
    /* RTLD_LOCAL keeps plugins' symbols apart; RTLD_NOW reports a missing
     * dependency here, not at the first call. */
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        snprintf(err, errlen, "cannot load plugin: %s", dlerror());
        return EVBUS_ECONFIG;
    }
    evbus_plugin_entry_fn entry;
    void *sym = dlsym(dl, EVBUS_PLUGIN_ENTRY_SYMBOL);
    memcpy(&entry, &sym, sizeof entry); /* object pointer to function pointer */
    if (!sym) {
        snprintf(err, errlen,
                 "%s: no %s symbol: not an evbus plugin, or the function is not exported "
                 "(mark it EVBUS_PLUGIN_EXPORT)",
                 path, EVBUS_PLUGIN_ENTRY_SYMBOL);
        dlclose(dl);
        return EVBUS_ECONFIG;
    }
    const evbus_plugin *d = entry();
    if (!d) {
        snprintf(err, errlen, "%s: %s() returned NULL", path, EVBUS_PLUGIN_ENTRY_SYMBOL);
        dlclose(dl);
        return EVBUS_ECONFIG;
    }
    if (check(path, d, err, errlen)) {
        dlclose(dl);
        return EVBUS_ECONFIG;
    }
    evbus__plugin_lib *lib = calloc(1, sizeof *lib);
    if (!lib || !(lib->path = strdup(path))) {
        free(lib);
        dlclose(dl);
        return EVBUS_ENOMEM;
    }
    lib->dl = dl;
    lib->desc = d;
    *out = lib;
    return EVBUS_OK;
}

void evbus__plugin_close(evbus__plugin_lib **libp) {
    if (!libp || !*libp)
        return;
    evbus__plugin_lib *lib = *libp;
    dlclose(lib->dl);
    free(lib->path);
    free(lib);
    *libp = NULL;
}
