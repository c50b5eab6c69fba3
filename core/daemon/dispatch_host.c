/* The services evbusd offers plugins (plugin.h's evbus_host_api), except
 * `report`, which belongs with the batches in dispatch.c. Every one runs on
 * the delivery thread. A host is one instance: a target in one region, whose
 * config_* answers are that region's keys over the target's config:. */
#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "dispatch_internal.h"
#include "plugin_config.h"

#define MISUSE_LOG_INTERVAL_MS 60000

static void host_log(evbus_host *h, evbus_log_level level, const char *fmt, ...) {
    if ((int)level > (int)evbus__log_threshold)
        return;
    va_list ap;
    va_start(ap, fmt);
    evbus__log_vwrite((evbus__log_level)level, h->prefix, fmt, ap);
    va_end(ap);
}

static int host_log_enabled(evbus_host *h, evbus_log_level level) {
    (void)h;
    return (int)level <= (int)evbus__log_threshold;
}

/* A declared key without a value is EVBUS_ENOENT from ABI 1.1 on; plugins
 * built for 1.0 keep getting the EVBUS_EINVAL they were built against. */
static evbus_err config_answer(const evbus_host *h, evbus_err rc) {
    if (!h->t)
        return EVBUS_EINVAL; /* a selector has no configuration keys */
    return rc == EVBUS_ENOENT && h->t->lib->desc->abi_minor < 1 ? EVBUS_EINVAL : rc;
}

static evbus_err host_config_string(evbus_host *h, const char *key, const char **out) {
    if (!h->t)
        return EVBUS_EINVAL;
    return config_answer(h, evbus__plugin_config_value(h->t->lib->desc, h->t->cfg, h->inst->region,
                                                       key, EVBUS_CONFIG_STRING, out));
}

static evbus_err host_config_num(evbus_host *h, const char *key, evbus_config_type type,
                                 int64_t *out) {
    const char *v;
    if (!h->t)
        return EVBUS_EINVAL;
    evbus_err rc =
        evbus__plugin_config_value(h->t->lib->desc, h->t->cfg, h->inst->region, key, type, &v);
    if (rc == EVBUS_OK && evbus__plugin_config_parse(type, v, out))
        rc = EVBUS_EINVAL; /* a default the plugin wrote wrong */
    return rc;
}

static evbus_err host_config_int(evbus_host *h, const char *key, int64_t *out) {
    return config_answer(h, host_config_num(h, key, EVBUS_CONFIG_INT, out));
}

static evbus_err host_config_bool(evbus_host *h, const char *key, int *out) {
    int64_t v;
    evbus_err rc = host_config_num(h, key, EVBUS_CONFIG_BOOL, &v);
    if (rc == EVBUS_OK)
        *out = (int)v;
    return config_answer(h, rc);
}

static evbus_err host_config_number(evbus_host *h, const char *key, uint64_t *out) {
    int64_t v;
    evbus_err rc = host_config_num(h, key, EVBUS_CONFIG_SIZE, &v);
    if (rc == EVBUS_EINVAL)
        rc = host_config_num(h, key, EVBUS_CONFIG_DURATION, &v);
    if (rc == EVBUS_OK)
        *out = (uint64_t)v;
    return config_answer(h, rc);
}

static int64_t host_now_ms(evbus_host *h) {
    (void)h;
    return evbus__now_mono_ms();
}

static uint64_t host_timer_add(evbus_host *h, int64_t delay_ms, evbus_timer_fn fn, void *arg) {
    evbus__dispatch *d = h->d;
    if (d->n_timers == d->timers_cap) {
        size_t cap = d->timers_cap ? d->timers_cap * 2 : 16;
        evbus__timer *nt = realloc(d->timers, cap * sizeof *nt);
        if (!nt)
            return 0;
        d->timers = nt;
        d->timers_cap = cap;
    }
    evbus__timer *t = &d->timers[d->n_timers++];
    t->id = ++d->next_timer_id;
    t->due_ms = evbus__now_mono_ms() + (delay_ms > 0 ? delay_ms : 0);
    t->fn = fn;
    t->arg = arg;
    return t->id;
}

static void host_timer_cancel(evbus_host *h, uint64_t id) {
    evbus__dispatch *d = h->d;
    for (size_t i = 0; i < d->n_timers; i++) {
        if (d->timers[i].id == id) {
            d->timers[i] = d->timers[--d->n_timers];
            return;
        }
    }
}

void evbus__host_misuse(evbus_host *h, evbus__misuse kind, evbus_log_level level, const char *fmt,
                        ...) {
    evbus__target *t = h->t;
    int64_t now = evbus__now_mono_ms();
    uint64_t n = ++t->misuse[kind].count;
    if (n > 1 && now - t->misuse[kind].last_log_ms < MISUSE_LOG_INTERVAL_MS)
        return;
    if ((int)level > (int)evbus__log_threshold)
        return;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    uint64_t unlogged = n - t->misuse[kind].logged - 1;
    if (unlogged)
        host_log(h, level, "%s (and %llu more like it since the last such line)", msg,
                 (unsigned long long)unlogged);
    else
        host_log(h, level, "%s", msg);
    t->misuse[kind].logged = n;
    t->misuse[kind].last_log_ms = now;
}

static evbus_err host_http_start(evbus_host *h, void *easy,
                                 void (*done)(void *arg, void *easy, int curl_code), void *arg) {
    if (!easy || !done)
        return EVBUS_EINVAL;
    evbus__transfer *tr = malloc(sizeof *tr);
    if (!tr)
        return EVBUS_ENOMEM;
    tr->easy = easy;
    tr->done = done;
    tr->arg = arg;
    curl_easy_setopt(easy, CURLOPT_PRIVATE, tr);
    if (curl_multi_add_handle(h->d->multi, easy) != CURLM_OK) {
        free(tr);
        return EVBUS_EINVAL;
    }
    LIST_PUSH(h->d->transfers, tr);
    return EVBUS_OK;
}

/* Names become part of a Prometheus metric name: [a-z0-9_] only. */
static bool counter_name_ok(const char *name) {
    if (!*name || strlen(name) >= sizeof((evbus__plugin_counter *)0)->name)
        return false;
    for (; *name; name++)
        if (!((*name >= 'a' && *name <= 'z') || (*name >= '0' && *name <= '9') || *name == '_'))
            return false;
    return true;
}

static void host_counter_add(evbus_host *h, const char *name, uint64_t delta) {
    if (!h->t)
        return; /* a selector's: no target to count for */
    if (!name || !counter_name_ok(name)) {
        host_log(h, EVBUS_LOG_LEVEL_WARN, "counter name '%s' is not [a-z0-9_]+: ignored",
                 name ? name : "(null)");
        return;
    }
    evbus__plugin_counter *c = h->t->k.plugin;
    for (int i = 0; i < EVBUS__PLUGIN_COUNTERS; i++) {
        if (!c[i].name[0])
            snprintf(c[i].name, sizeof c[i].name, "%s", name);
        if (strcmp(c[i].name, name) == 0) {
            c[i].value += delta;
            return;
        }
    }
}

void evbus__dispatch_host_api(evbus_host_api *api,
                              void (*report)(evbus_host *, const evbus_batch *, size_t,
                                             evbus_result, uint32_t, const char *)) {
    *api = (evbus_host_api){
        .size = sizeof(evbus_host_api),
        .abi_major = EVBUS_PLUGIN_ABI_MAJOR,
        .abi_minor = EVBUS_PLUGIN_ABI_MINOR,
        .log = host_log,
        .log_enabled = host_log_enabled,
        .config_string = host_config_string,
        .config_int = host_config_int,
        .config_bool = host_config_bool,
        .config_number = host_config_number,
        .now_ms = host_now_ms,
        .timer_add = host_timer_add,
        .timer_cancel = host_timer_cancel,
        .report = report,
        .http_start = host_http_start,
        .counter_add = host_counter_add,
    };
}
