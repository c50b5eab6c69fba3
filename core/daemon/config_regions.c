/* Regions in the configuration: the top-level `regions:` list (where targets
 * may deliver, in order of preference) and each target's `regions:` (its
 * plugin's settings per region), checked against each other; and the order
 * of a target's plugin instances, which the dispatcher follows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

/* Longest region name: a DNS label, since AWS plugins build host names from
 * it (sqs.REGION.amazonaws.com). */
#define REGION_NAME_MAX 63

/* A region name goes into host names, log prefixes, metric labels and file
 * paths: lower-case letters, digits and inner hyphens only, as AWS's own
 * names (us-east-1, us-gov-west-1) are. */
static bool region_name_ok(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > REGION_NAME_MAX || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

static bool has_list(const evbus__config *cfg) {
    return cfg->regions_pos.line != 0;
}

/* Index of the listed region named `name`, or -1. */
static long listed(const evbus__config *cfg, const char *name) {
    for (size_t i = 0; i < cfg->regions.n; i++) {
        const char *r = evbus__config_region(cfg, i)->name;
        if (r && strcmp(r, name) == 0)
            return (long)i;
    }
    return -1;
}

static void check_list(const evbus__config *cfg, evbus__cfg_errors *e) {
    char key[64];
    /* pos is set once a list was read: an empty list, not a wrong type. */
    if (cfg->regions.pos && cfg->regions.n == 0)
        evbus__cfg_error(e, cfg->regions_pos, "regions",
                         "lists no region: list at least one, or leave regions: out to deliver "
                         "in the router's own region");
    for (size_t i = 0; i < cfg->regions.n; i++) {
        const evbus__region_cfg *r = evbus__config_region(cfg, i);
        if (!r->name)
            continue; /* missing: the schema said so */
        snprintf(key, sizeof key, "regions[%zu].name", i);
        long first = listed(cfg, r->name);
        if (!region_name_ok(r->name))
            evbus__cfg_error(e, r->name_pos, key,
                             "'%s' is not a region name: 1 to %d lower-case letters, digits and "
                             "hyphens, such as us-east-1",
                             r->name, REGION_NAME_MAX);
        else if (first != (long)i)
            evbus__cfg_error(
                e, r->name_pos, key, "region '%s' is listed twice (first as regions[%ld], line %u)",
                r->name, first, evbus__config_region(cfg, (size_t)first)->name_pos.line);
    }
}

/* Lists the known regions into buf for a message. */
static void known_regions(const evbus__config *cfg, char *buf, size_t len) {
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < cfg->regions.n && used + 1 < len; i++) {
        const char *r = evbus__config_region(cfg, i)->name;
        int n = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", r ? r : "?");
        if (n > 0)
            used = used + (size_t)n < len ? used + (size_t)n : len - 1;
    }
}

static void check_target(const evbus__config *cfg, size_t index, const evbus__target_cfg *t,
                         evbus__cfg_errors *e) {
    char key[300], known[256];
    const char *tname = t->name ? t->name : "?";
    if (t->regions.at.line && t->regions.n == 0) {
        snprintf(key, sizeof key, "targets[%zu].regions", index);
        evbus__cfg_error(e, t->regions.at, key,
                         "names no region (target '%s'): name at least one, or leave regions: "
                         "out to deliver in the router's own region",
                         tname);
    }
    for (size_t j = 0; j < t->regions.n; j++) {
        const evbus__cfg_named_map *m = &t->regions.v[j];
        snprintf(key, sizeof key, "targets[%zu].regions.%s", index, m->name);
        if (has_list(cfg)) {
            if (listed(cfg, m->name) < 0) {
                known_regions(cfg, known, sizeof known);
                evbus__cfg_error(e, m->name_pos, key,
                                 "region '%s' is not listed under the top-level regions: "
                                 "(listed: %s)",
                                 m->name, known[0] ? known : "none");
            }
        } else if (strcmp(m->name, cfg->region) != 0) {
            evbus__cfg_error(e, m->name_pos, key,
                             "region '%s' is not this router's region ('%s'): list the regions "
                             "targets deliver to under a top-level regions:",
                             m->name, cfg->region);
        }
    }
}

/* Preference order: the top-level list's, whatever order a target writes its
 * regions in. Without a list, the only region a target may name is the
 * router's own. */
static void order_target(const evbus__config *cfg, size_t index, evbus__target_cfg *t) {
    free(t->delivery_regions);
    t->delivery_regions = calloc(t->regions.n ? t->regions.n : 1, sizeof *t->delivery_regions);
    t->n_delivery_regions = 0;
    if (!t->delivery_regions)
        return; /* the dispatcher refuses a target without regions */
    if (!t->regions.at.line) {
        t->delivery_regions[t->n_delivery_regions++] = (evbus__target_region){
            .name = cfg->region, .config = NULL, .at = cfg->targets.pos[index]};
        return;
    }
    for (size_t i = 0; i < (has_list(cfg) ? cfg->regions.n : 1); i++) {
        const char *want = has_list(cfg) ? evbus__config_region(cfg, i)->name : cfg->region;
        if (!want || (has_list(cfg) && listed(cfg, want) != (long)i))
            continue; /* missing or listed twice: reported */
        for (size_t j = 0; j < t->regions.n; j++) {
            const evbus__cfg_named_map *m = &t->regions.v[j];
            if (strcmp(m->name, want) == 0)
                t->delivery_regions[t->n_delivery_regions++] =
                    (evbus__target_region){.name = m->name, .config = &m->map, .at = m->name_pos};
        }
    }
}

void evbus__config_regions(evbus__config *cfg, evbus__cfg_errors *e) {
    check_list(cfg, e);
    for (size_t i = 0; i < cfg->targets.n; i++) {
        evbus__target_cfg *t = &((evbus__target_cfg *)cfg->targets.v)[i];
        check_target(cfg, i, t, e);
        order_target(cfg, i, t);
    }
}
