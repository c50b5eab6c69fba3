#include "routing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "match.h"

struct evbus__router {
    evbus__matcher *matcher;
    size_t n_targets;
    long catch_all; /* target index, or -1 */
    /* Matcher rule i is configuration rule rule_cfg[i] (disabled rules are
     * not compiled); its targets are rule_targets[rule_first[i] ..
     * rule_first[i + 1]). */
    size_t *rule_first;
    uint32_t *rule_targets;
};

struct evbus__route_scratch {
    const evbus__router *router;
    evbus__match_scratch *match;
    unsigned char *hit; /* per target: already chosen for this event */
    uint32_t *targets;
    size_t n;
    int matched;
};

evbus_err evbus__router_new(const evbus__config *cfg, evbus__router **out, char *err,
                            size_t errlen) {
    evbus_err rc = EVBUS_ENOMEM;
    size_t nr = cfg->rules.n, total = 0, k = 0;
    evbus__router *r = calloc(1, sizeof *r);
    evbus__match_rule *rules = calloc(nr ? nr : 1, sizeof *rules);
    size_t *cfg_index = calloc(nr ? nr : 1, sizeof *cfg_index);
    if (!r || !rules || !cfg_index)
        goto fail;
    r->n_targets = cfg->targets.n;
    r->catch_all =
        cfg->catch_all_target ? evbus__config_target_index(cfg, cfg->catch_all_target) : -1;
    for (size_t i = 0; i < nr; i++)
        if (evbus__config_rule(cfg, i)->enabled)
            total += evbus__config_rule(cfg, i)->targets.n;
    r->rule_first = calloc(nr + 1, sizeof *r->rule_first);
    r->rule_targets = calloc(total ? total : 1, sizeof *r->rule_targets);
    if (!r->rule_first || !r->rule_targets)
        goto fail;
    size_t used = 0;
    for (size_t i = 0; i < nr; i++) {
        const evbus__rule_cfg *rc_ = evbus__config_rule(cfg, i);
        if (!rc_->enabled)
            continue;
        rules[k].name = rc_->name;
        rules[k].pattern_json = rc_->pattern;
        cfg_index[k] = i;
        r->rule_first[k] = used;
        for (size_t t = 0; t < rc_->targets.n; t++)
            r->rule_targets[used++] = (uint32_t)evbus__config_target_index(cfg, rc_->targets.v[t]);
        k++;
    }
    r->rule_first[k] = used;
    char why[1024];
    size_t failed = k;
    evbus__match_opts opts = {.failed_rule = &failed};
    rc = evbus__matcher_compile_opts(rules, k, &opts, &r->matcher, why, sizeof why);
    if (rc == EVBUS_ECONFIG) {
        /* Point at the refused rule's pattern in the file (evbus__config_load
         * has already checked every pattern, so this is seldom reached). */
        if (failed < k) {
            const evbus__rule_cfg *bad = evbus__config_rule(cfg, cfg_index[failed]);
            snprintf(err, errlen, "%s:%u:%u: rules[%zu]: %s", cfg->path, bad->pattern_pos.line,
                     bad->pattern_pos.column, cfg_index[failed], why);
        } else
            snprintf(err, errlen, "%s: %s", cfg->path, why);
        goto fail;
    }
    if (rc != EVBUS_OK) {
        snprintf(err, errlen, "%s: cannot compile the rules: %s", cfg->path, evbus_strerror(rc));
        goto fail;
    }
    free(rules);
    free(cfg_index);
    *out = r;
    return EVBUS_OK;
fail:
    free(rules);
    free(cfg_index);
    evbus__router_destroy(&r);
    return rc;
}

void evbus__router_destroy(evbus__router **rp) {
    if (!rp || !*rp)
        return;
    evbus__router *r = *rp;
    evbus__matcher_destroy(&r->matcher);
    free(r->rule_first);
    free(r->rule_targets);
    free(r);
    *rp = NULL;
}

size_t evbus__router_target_count(const evbus__router *r) {
    return r->n_targets;
}

evbus_err evbus__route_scratch_new(const evbus__router *r, evbus__route_scratch **out) {
    evbus__route_scratch *s = calloc(1, sizeof *s);
    if (!s)
        return EVBUS_ENOMEM;
    s->router = r;
    s->hit = calloc(r->n_targets ? r->n_targets : 1, 1);
    s->targets = calloc(r->n_targets ? r->n_targets : 1, sizeof *s->targets);
    if (!s->hit || !s->targets || evbus__match_scratch_new(r->matcher, &s->match) != EVBUS_OK) {
        evbus__route_scratch_destroy(&s);
        return EVBUS_ENOMEM;
    }
    *out = s;
    return EVBUS_OK;
}

void evbus__route_scratch_destroy(evbus__route_scratch **sp) {
    if (!sp || !*sp)
        return;
    evbus__route_scratch *s = *sp;
    evbus__match_scratch_destroy(&s->match);
    free(s->hit);
    free(s->targets);
    free(s);
    *sp = NULL;
}

static void on_rule(void *arg, uint32_t rule) {
    evbus__route_scratch *s = arg;
    const evbus__router *r = s->router;
    s->matched = 1;
    for (size_t i = r->rule_first[rule]; i < r->rule_first[rule + 1]; i++) {
        uint32_t t = r->rule_targets[i];
        if (!s->hit[t]) {
            s->hit[t] = 1;
            s->targets[s->n++] = t;
        }
    }
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

evbus_err evbus__route(const evbus__router *r, evbus__route_scratch *s, const Evbus__V1__Event *ev,
                       uint32_t *targets, size_t max, size_t *n, int *matched) {
    evbus__match_event me = {
        .version = "0",
        .id = ev->id,
        .source = ev->source,
        .detail_type = ev->detail_type,
        .time = ev->time,
        .region = ev->origin_region,
        .account = NULL,
        .resources = (const char *const *)ev->resources,
        .n_resources = ev->n_resources,
        .detail = ev->detail,
        .detail_len = strlen(ev->detail),
        /* evbus__event_prepare refuses a detail that is not a JSON object
         * before an event is routed, so the matcher need not check it again. */
        .detail_checked = true,
    };
    s->n = 0;
    s->matched = 0;
    *n = 0;
    *matched = 0;
    evbus_err rc = evbus__matcher_match(r->matcher, s->match, &me, on_rule, s);
    for (size_t i = 0; i < s->n; i++)
        s->hit[s->targets[i]] = 0;
    if (rc != EVBUS_OK)
        return rc;
    *matched = s->matched;
    if (!s->matched && r->catch_all >= 0)
        s->targets[s->n++] = (uint32_t)r->catch_all;
    qsort(s->targets, s->n, sizeof *s->targets, cmp_u32);
    *n = s->n < max ? s->n : max;
    memcpy(targets, s->targets, *n * sizeof *targets);
    return EVBUS_OK;
}
