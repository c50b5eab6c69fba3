#include "plugin_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const evbus_config_key *find_key(const evbus_plugin *p, const char *name) {
    for (const evbus_config_key *k = p->config_keys; k && k->name; k++)
        if (strcmp(k->name, name) == 0)
            return k;
    return NULL;
}

static const evbus__cfg_kv *find_in(const evbus__cfg_map *m, const char *name) {
    for (size_t i = 0; m && i < m->n; i++)
        if (strcmp(m->v[i].key, name) == 0)
            return &m->v[i];
    return NULL;
}

/* The region's value wins over the target's. */
static const evbus__cfg_kv *find_value(const evbus__target_cfg *t, const evbus__target_region *r,
                                       const char *name) {
    const evbus__cfg_kv *kv = r ? find_in(r->config, name) : NULL;
    return kv ? kv : find_in(&t->config, name);
}

int evbus__plugin_config_parse(evbus_config_type type, const char *s, int64_t *num) {
    char *end;
    uint64_t u;
    switch (type) {
    case EVBUS_CONFIG_STRING: return 0;
    case EVBUS_CONFIG_INT:
        errno = 0;
        *num = strtoll(s, &end, 10);
        return errno || end == s || *end ? -1 : 0;
    case EVBUS_CONFIG_BOOL:
        if (strcmp(s, "true") && strcmp(s, "false"))
            return -1;
        *num = s[0] == 't';
        return 0;
    case EVBUS_CONFIG_SIZE:
        if (evbus__cfg_parse_size(s, &u) || u > INT64_MAX)
            return -1;
        *num = (int64_t)u;
        return 0;
    case EVBUS_CONFIG_DURATION: return evbus__cfg_parse_duration(s, num);
    }
    return -1;
}

static const char *type_name(evbus_config_type type) {
    switch (type) {
    case EVBUS_CONFIG_STRING: return "a string";
    case EVBUS_CONFIG_INT: return "a whole number";
    case EVBUS_CONFIG_BOOL: return "true or false";
    case EVBUS_CONFIG_SIZE: return "a size such as 4096 or 512KiB";
    case EVBUS_CONFIG_DURATION: return "a duration such as 250ms or 30s";
    }
    return "?";
}

/* Unknown keys and values of the wrong type in one mapping; `prefix` is the
 * mapping's key path ("targets[0].config"). */
static unsigned check_map(evbus__cfg_errors *e, const char *prefix, const evbus__cfg_map *m,
                          const evbus_plugin *p) {
    unsigned bad = 0;
    char key[400];
    for (size_t i = 0; i < m->n; i++) {
        const evbus__cfg_kv *kv = &m->v[i];
        const evbus_config_key *k = find_key(p, kv->key);
        snprintf(key, sizeof key, "%s.%s", prefix, kv->key);
        if (!k) {
            char known[256] = "";
            size_t used = 0;
            for (const evbus_config_key *q = p->config_keys; q && q->name; q++) {
                int n =
                    snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "", q->name);
                if (n > 0 && used + (size_t)n < sizeof known)
                    used += (size_t)n;
            }
            /* The key is what is wrong: point at it, not at its value. */
            evbus__cfg_error(e, (evbus__cfg_pos){kv->key_line, kv->key_column}, key,
                             "unknown key for plugin %s (known: %s)", p->name,
                             used ? known : "none");
            bad++;
            continue;
        }
        int64_t num;
        if (evbus__plugin_config_parse(k->type, kv->value, &num)) {
            evbus__cfg_error(e, (evbus__cfg_pos){kv->line, kv->column}, key,
                             "expected %s, got '%s' (%s)", type_name(k->type), kv->value,
                             k->help ? k->help : "");
            bad++;
        }
    }
    return bad;
}

unsigned evbus__plugin_config_check(evbus__cfg_errors *e, size_t index, evbus__cfg_pos at,
                                    const evbus__target_cfg *t, const evbus_plugin *p) {
    char prefix[300];
    snprintf(prefix, sizeof prefix, "targets[%zu].config", index);
    unsigned bad = check_map(e, prefix, &t->config, p);
    for (size_t j = 0; j < t->regions.n; j++) {
        snprintf(prefix, sizeof prefix, "targets[%zu].regions.%s", index, t->regions.v[j].name);
        bad += check_map(e, prefix, &t->regions.v[j].map, p);
    }
    /* Required keys: per region, since each region's instance needs them. */
    for (size_t j = 0; j < t->n_delivery_regions; j++) {
        const evbus__target_region *r = &t->delivery_regions[j];
        if (r->config)
            snprintf(prefix, sizeof prefix, "targets[%zu].regions.%s (%s)", index, r->name,
                     t->name);
        else
            snprintf(prefix, sizeof prefix, "targets[%zu] (%s)", index, t->name);
        for (const evbus_config_key *k = p->config_keys; k && k->name; k++) {
            if (k->required && !find_value(t, r, k->name)) {
                evbus__cfg_error(e, r->config ? r->at : at, prefix,
                                 "plugin %s needs config key '%s'%s (%s)", p->name, k->name,
                                 r->config ? ", in config: or in this region's keys" : "",
                                 k->help ? k->help : "");
                bad++;
            }
        }
    }
    return bad;
}

evbus_err evbus__plugin_config_value(const evbus_plugin *p, const evbus__target_cfg *t,
                                     const evbus__target_region *r, const char *key,
                                     evbus_config_type type, const char **value) {
    const evbus_config_key *k = key ? find_key(p, key) : NULL;
    if (!k || k->type != type)
        return EVBUS_EINVAL;
    const evbus__cfg_kv *kv = find_value(t, r, key);
    const char *v = kv ? kv->value : k->default_value;
    if (!v)
        return EVBUS_ENOENT;
    *value = v;
    return EVBUS_OK;
}
