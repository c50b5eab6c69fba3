/* Regions in the configuration: the top-level `regions:` list (where targets
 * may deliver, in order of preference) and each target's `regions:` (its
 * plugin's settings per region), checked against each other; and the order
 * of a target's plugin instances, which the dispatcher follows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "evbus/plugin.h"

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

static void check_health(evbus__region_cfg *r, size_t i, evbus__cfg_errors *e);

static void check_list(evbus__config *cfg, evbus__cfg_errors *e) {
    char key[64];
    /* pos is set once a list was read: an empty list, not a wrong type. */
    if (cfg->regions.pos && cfg->regions.n == 0)
        evbus__cfg_error(e, cfg->regions_pos, "regions",
                         "lists no region: list at least one, or leave regions: out to deliver "
                         "in the router's own region");
    for (size_t i = 0; i < cfg->regions.n; i++) {
        evbus__region_cfg *r = &((evbus__region_cfg *)cfg->regions.v)[i];
        check_health(r, i, e);
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

/* The url's port, if it names one, is a number from 1 to 65535 (the
 * probe would otherwise fail every check, or connect somewhere else).
 * Returns false, with the port text in bad, when it is not. */
static bool url_port_ok(const char *url, char *bad, size_t len) {
    const char *host = strstr(url, "://");
    host = host ? host + 3 : url;
    size_t n = strcspn(host, "/?#");
    const char *end = host + n, *colon = NULL;
    /* The last ':' after an IPv6 literal's ']' (or anywhere without one). */
    const char *close = memchr(host, ']', n);
    for (const char *c = close ? close : host; c < end; c++)
        if (*c == ':')
            colon = c;
    if (!colon)
        return true;
    snprintf(bad, len, "%.*s", (int)(end - colon - 1), colon + 1);
    if (colon + 1 == end || strspn(colon + 1, "0123456789") < (size_t)(end - colon - 1))
        return false;
    unsigned long port = strtoul(colon + 1, NULL, 10);
    return end - colon - 1 <= 5 && port >= 1 && port <= 65535;
}

/* A TCP check's url is tcp://HOST:PORT: without a port there is nothing to
 * connect to, and a path or query would be silently ignored. */
static bool tcp_url_ok(const char *url) {
    const char *host = url + 6;
    size_t n = strcspn(host, "/?#");
    if (host[n] != '\0' && strcmp(host + n, "/") != 0)
        return false;
    const char *close = memchr(host, ']', n);
    return memchr(close ? close : host, ':', n - (size_t)((close ? close : host) - host)) != NULL;
}

/* A check's timeout when the configuration gives none: Route 53's 2 s for
 * an answer, or half the interval when that is shorter, so that `interval:
 * 1s` alone is a valid check (a check must end before the next starts,
 * with room to spare for a slow answer). 2 s from a 4 s interval on: both
 * of Route 53's intervals (10 s, 30 s) get its 2 s. */
static int64_t default_timeout_ms(int64_t interval_ms) {
    return interval_ms / 2 < 2000 ? interval_ms / 2 : 2000;
}

/* One simple check (a region's, or a calculated check's child at `key`):
 * the type from the url's scheme unless given, and they must agree; the
 * timeout shorter than the interval (a check must end before the next
 * starts); match only where there is a body. `inherited`: its timeout is
 * the calculated check's (whose position check_timeout_pos then holds). */
static void check_simple(evbus__region_cfg *r, const char *key, const char *region,
                         evbus__cfg_pos at, bool inherited, evbus__cfg_errors *e) {
    char k[160];
    snprintf(k, sizeof k, "%s.url", key);
    int scheme = -1;
    if (!r->check_url)
        evbus__cfg_error(e, at, k, "missing: what is checked (region '%s')", region);
    else if (strncmp(r->check_url, "http://", 7) == 0)
        scheme = EVBUS_CHECK_HTTP;
    else if (strncmp(r->check_url, "https://", 8) == 0)
        scheme = EVBUS_CHECK_HTTPS;
    else if (strncmp(r->check_url, "tcp://", 6) == 0)
        scheme = EVBUS_CHECK_TCP;
    else
        evbus__cfg_error(e, r->check_url_pos, k,
                         "'%s' is not an http://, https:// or tcp://HOST:PORT url", r->check_url);
    char port[16];
    if (scheme == EVBUS_CHECK_TCP && !tcp_url_ok(r->check_url))
        evbus__cfg_error(e, r->check_url_pos, k,
                         "'%s' is not tcp://HOST:PORT: a TCP check needs a port, and nothing "
                         "after it (region '%s')",
                         r->check_url, region);
    else if (scheme > 0 && !url_port_ok(r->check_url, port, sizeof port))
        evbus__cfg_error(e, r->check_url_pos, k,
                         "'%s': port '%s' is not a number from 1 to 65535 (region '%s')",
                         r->check_url, port, region);
    /* The schema's enum index: 0 http, 1 https, 2 tcp. */
    int given = r->check_type >= 0 ? r->check_type + 1 : -1;
    if (given > 0 && scheme > 0 && given != scheme)
        evbus__cfg_error(e, r->check_url_pos, k,
                         "the url's scheme does not match type: %s (region '%s')",
                         given == EVBUS_CHECK_HTTP    ? "http"
                         : given == EVBUS_CHECK_HTTPS ? "https"
                                                      : "tcp",
                         region);
    r->check_type = scheme > 0 ? scheme : given > 0 ? given : EVBUS_CHECK_HTTP;
    if (!r->check_timeout_ms) {
        r->check_timeout_ms = default_timeout_ms(r->check_interval_ms);
    } else if (r->check_timeout_ms >= r->check_interval_ms) {
        snprintf(k, sizeof k, "%s.timeout", key);
        evbus__cfg_error(e, r->check_timeout_pos.line ? r->check_timeout_pos : at, k,
                         "%lldms is not shorter than the interval (%lldms)%s; leave timeout out "
                         "for the default (2s, or half the interval when that is shorter)",
                         (long long)r->check_timeout_ms, (long long)r->check_interval_ms,
                         inherited ? ": it is the calculated check's timeout, which this check "
                                     "inherits"
                                   : "");
    }
    snprintf(k, sizeof k, "%s.match", key);
    if (r->check_match && r->check_type == EVBUS_CHECK_TCP)
        evbus__cfg_error(e, r->check_match_pos, k,
                         "a tcp check has no answer to match: use an http or https url");
    if (r->check_match && strlen(r->check_match) > 255)
        evbus__cfg_error(e, r->check_match_pos, k, "longer than 255 characters");
}

/* A region's health_check: a simple one, or a calculated one whose children
 * take the keys they leave out from it. */
static void check_health(evbus__region_cfg *r, size_t i, evbus__cfg_errors *e) {
    char key[120];
    const char *name = r->name ? r->name : "?";
    if (!r->check_pos.line)
        return;
    snprintf(key, sizeof key, "regions[%zu].health_check", i);
    if (!r->calc_pos.line) {
        check_simple(r, key, name, r->check_pos, false, e);
        return;
    }
    if (r->check_url || r->check_match || r->check_inverted) {
        evbus__cfg_error(e, r->check_url_pos.line ? r->check_url_pos : r->calc_pos, key,
                         "a calculated check has no url, match or inverted of its own: give "
                         "them to its child checks (region '%s')",
                         name);
        return;
    }
    if (!r->calc_checks_pos.line || r->calc_checks.n == 0) {
        snprintf(key, sizeof key, "regions[%zu].health_check.calculated.checks", i);
        evbus__cfg_error(e, r->calc_pos, key, "names no child check (region '%s')", name);
        return;
    }
    r->check_type = EVBUS_CHECK_CALCULATED;
    for (size_t c = 0; c < r->calc_checks.n; c++) {
        evbus__region_cfg *child = (evbus__region_cfg *)r->calc_checks.v + c;
        if (!child->check_interval_ms)
            child->check_interval_ms = r->check_interval_ms;
        /* A timeout the calculated check gives is its children's; without
         * one, each child's default follows its own interval. */
        bool inherited = !child->check_timeout_ms && r->check_timeout_ms;
        if (inherited) {
            child->check_timeout_ms = r->check_timeout_ms;
            child->check_timeout_pos = r->check_timeout_pos;
        }
        if (!child->check_failure_threshold)
            child->check_failure_threshold = r->check_failure_threshold;
        if (!child->check_recovery_threshold)
            child->check_recovery_threshold = r->check_recovery_threshold;
        snprintf(key, sizeof key, "regions[%zu].health_check.calculated.checks[%zu]", i, c);
        check_simple(child, key, name, r->calc_checks.pos[c], inherited, e);
    }
    if (!r->check_timeout_ms)
        r->check_timeout_ms = default_timeout_ms(r->check_interval_ms);
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

/* Whether target t names region `name` under its regions: (or, without, is
 * in the router's region). */
static bool target_has(const evbus__config *cfg, const evbus__target_cfg *t, const char *name) {
    if (!t->regions.at.line)
        return strcmp(name, cfg->region) == 0;
    for (size_t j = 0; j < t->regions.n; j++)
        if (strcmp(t->regions.v[j].name, name) == 0)
            return true;
    return false;
}

/* policy, primary and weights against the target's own regions. */
static void check_policy(const evbus__config *cfg, size_t index, const evbus__target_cfg *t,
                         evbus__cfg_errors *e) {
    char key[300];
    const char *tname = t->name ? t->name : "?";
    if (t->primary && !target_has(cfg, t, t->primary)) {
        snprintf(key, sizeof key, "targets[%zu].primary", index);
        evbus__cfg_error(e, t->primary_pos, key, "'%s' is not one of target '%s''s regions",
                         t->primary, tname);
    }
    bool weighted = t->policy == EVBUS_POLICY_WEIGHTED - 1;
    snprintf(key, sizeof key, "targets[%zu].weights", index);
    if (t->weights.line && !weighted)
        evbus__cfg_error(e, t->weights_pos, key,
                         "weights are for policy: weighted (target '%s' has another policy)",
                         tname);
    if (weighted && !t->weights.line)
        evbus__cfg_error(e, t->policy_pos, key,
                         "policy weighted needs weights: {REGION: 0-255, ...} (target '%s')",
                         tname);
    for (size_t k = 0; k < t->weights.n; k++) {
        const evbus__cfg_kv *kv = &t->weights.v[k];
        char wkey[360];
        snprintf(wkey, sizeof wkey, "%s.%s", key, kv->key);
        char *end;
        unsigned long w = strtoul(kv->value, &end, 10);
        if (!target_has(cfg, t, kv->key))
            evbus__cfg_error(e, (evbus__cfg_pos){kv->key_line, kv->key_column}, wkey,
                             "'%s' is not one of target '%s''s regions", kv->key, tname);
        else if (kv->value[0] < '0' || kv->value[0] > '9' || *end || w > 255)
            evbus__cfg_error(e, (evbus__cfg_pos){kv->line, kv->column}, wkey,
                             "expected a weight from 0 to 255, got '%s'", kv->value);
    }
    for (size_t j = 0; weighted && t->weights.line && j < t->regions.n; j++) {
        bool found = false;
        for (size_t k = 0; k < t->weights.n && !found; k++)
            found = strcmp(t->weights.v[k].key, t->regions.v[j].name) == 0;
        if (!found)
            evbus__cfg_error(e, t->weights_pos, key, "no weight for region '%s' (target '%s')",
                             t->regions.v[j].name, tname);
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
    size_t listed_n = has_list(cfg) ? cfg->regions.n : 1;
    if (cfg->controls_at_least_on > listed_n)
        evbus__cfg_error(e, cfg->at_least_on_pos, "routing_controls.at_least_on",
                         "%llu is more than the %zu region(s) there are: every change would be "
                         "refused",
                         (unsigned long long)cfg->controls_at_least_on, listed_n);
    for (size_t i = 0; i < cfg->targets.n; i++) {
        evbus__target_cfg *t = &((evbus__target_cfg *)cfg->targets.v)[i];
        check_target(cfg, i, t, e);
        check_policy(cfg, i, t, e);
        order_target(cfg, i, t);
    }
}
