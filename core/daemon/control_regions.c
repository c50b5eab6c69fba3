/* `evbus region ...` on the control socket: routing controls (on/off per
 * region, with ARC's safety rules) and application states per target
 * (active, fenced, failover), and the regions part of the status.
 *
 * The control thread is the only one that changes controls and application
 * states, so it keeps their current values here (loaded from the state
 * sub-database at start) and checks every rule against them before it
 * hands the change to the writer: a command that returns has been judged
 * against every earlier one, even before the writer committed them. The
 * delivery thread applies a change once it is durable. */
#include "control_regions.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "common/log.h"
#include "common/util.h"
#include "control.h"
#include "dispatch_msg.h"
#include "evbus/plugin.h"

struct evbus__control_regions {
    const evbus__config *cfg;
    evbus__dispatch *dispatch;
    void *results; /* the control thread's PUSH to the writer */
    size_t n_regions;
    const char **names; /* the router's regions */
    bool *on;
    char (*app)[32];        /* per target: "active", "failover", "fenced:PREVIOUS" */
    int64_t last_change_ms; /* monotonic: the gating rule's wait period */
};

static bool routed(const evbus__config *cfg, size_t t) {
    return evbus__config_target(cfg, t)->regions.n > 0;
}

static void on_state(void *arg, const char *key, const char *value) {
    evbus__control_regions *r = arg;
    if (strncmp(key, "control/", 8) == 0) {
        for (size_t i = 0; i < r->n_regions; i++)
            if (strcmp(r->names[i], key + 8) == 0)
                r->on[i] = strcmp(value, "off") != 0;
    } else if (strncmp(key, "app/", 4) == 0) {
        long t = evbus__config_target_index(r->cfg, key + 4);
        if (t >= 0)
            snprintf(r->app[t], sizeof r->app[t], "%s", value);
    }
}

evbus__control_regions *evbus__control_regions_new(const evbus__config *cfg, evbus__store *store,
                                                   evbus__dispatch *dispatch, void *results) {
    evbus__control_regions *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->cfg = cfg;
    r->dispatch = dispatch;
    r->results = results;
    bool list = cfg->regions_pos.line != 0;
    r->n_regions = list ? cfg->regions.n : 1;
    r->names = calloc(r->n_regions ? r->n_regions : 1, sizeof *r->names);
    r->on = calloc(r->n_regions ? r->n_regions : 1, sizeof *r->on);
    r->app = calloc(cfg->targets.n ? cfg->targets.n : 1, sizeof *r->app);
    if (!r->names || !r->on || !r->app) {
        evbus__control_regions_destroy(&r);
        return NULL;
    }
    for (size_t i = 0; i < r->n_regions; i++) {
        r->names[i] = list ? evbus__config_region(cfg, i)->name : cfg->region;
        r->on[i] = true;
    }
    for (size_t t = 0; t < cfg->targets.n; t++)
        snprintf(r->app[t], sizeof r->app[t], "active");
    evbus__store_foreach_state(store, on_state, r);
    r->last_change_ms = INT64_MIN / 2;
    return r;
}

void evbus__control_regions_destroy(evbus__control_regions **rp) {
    if (!rp || !*rp)
        return;
    free((*rp)->names);
    free((*rp)->on);
    free((*rp)->app);
    free(*rp);
    *rp = NULL;
}

static json_t *refuse(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *refuse(const char *fmt, ...) {
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return json_pack("{s:b, s:s}", "ok", 0, "error", why);
}

/* Who asked and why, for the audit event of a change. */
typedef struct asker {
    const char *who;     /* the control connection's User-Id: owner, operator:NAME, local */
    const char *command; /* "evbus region off us-east-1 --force" */
    const char *reason;  /* the operator's --reason; NULL: none */
} asker;

/* The audit event's detail (audit.h): what changed, from, to, by whom, why
 * and when. Caller frees. */
static char *audit_detail(const char *kind, const char *name, const char *from, const char *to,
                          const asker *a) {
    char at[32], why[600];
    evbus__format_time(evbus__now_wall_ms(), at);
    snprintf(why, sizeof why, "%s%s%s", a->command, a->reason ? ": " : "",
             a->reason ? a->reason : "");
    json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", kind, name, "from", from, "to", to,
                          "by", a->who ? a->who : "unknown", "why", why, "time", at);
    char *text = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    return text;
}

/* Hands "KEY=VALUE" pairs to the writer in one message (one commit), with
 * the audit event that records them: both are durable in the same
 * transaction, or neither is. */
static bool store_changes(evbus__control_regions *r, const char *const *kv, size_t n,
                          const char *audit_type, const char *audit) {
    evbus__result_msg *m = evbus__result_msg_new(n);
    if (!m)
        return false;
    m->target = EVBUS__MSG_NO_BATCH;
    for (size_t i = 0; i < n; i++) {
        evbus__store_result res = {.outcome = EVBUS__STATE};
        evbus__result_msg_add(m, &res, kv[i]);
    }
    evbus__result_msg_seal(m);
    if ((audit && !evbus__result_msg_audit(m, audit_type, audit)) ||
        zmq_send(r->results, &m, sizeof m, 0) != (int)sizeof m) {
        evbus__result_msg_free(m);
        return false;
    }
    return true;
}

/* The targets without regions: that run in region `name` (the router's own):
 * its routing control holds them too. Holding them is what keeps a target
 * bound to one region (an AWS sink there) from spending its events'
 * retries into the dead-letter store while the region is out; but it also
 * stops a target with nothing regional about it (a local audit file), so
 * the answer names them. Caller owns the array. */
static json_t *unlisted_targets_in(const evbus__control_regions *r, const char *name) {
    json_t *list = json_array();
    for (size_t t = 0; t < r->cfg->targets.n; t++) {
        const evbus__target_cfg *tc = evbus__config_target(r->cfg, t);
        if (!tc->regions.at.line && strcmp(r->cfg->region, name) == 0)
            json_array_append_new(list, json_string(tc->name));
    }
    return list;
}

static json_t *switch_control(evbus__control_regions *r, json_t *req, bool on, const asker *a) {
    const char *name = json_string_value(json_object_get(req, "region"));
    bool force = json_is_true(json_object_get(req, "force"));
    long idx = -1;
    for (size_t i = 0; name && i < r->n_regions; i++)
        if (strcmp(r->names[i], name) == 0)
            idx = (long)i;
    if (idx < 0)
        return refuse("no such region '%s' (name one of the top-level regions:)", name ? name : "");
    if (r->on[idx] == on)
        return json_pack("{s:b, s:s, s:s, s:b, s:o}", "ok", 1, "region", name, "routing_control",
                         on ? "on" : "off", "changed", 0, on ? "also_resumes" : "also_holds",
                         unlisted_targets_in(r, name));
    size_t on_after = 0;
    for (size_t i = 0; i < r->n_regions; i++)
        on_after += (long)i == idx ? on : r->on[i];
    if (!force && on_after < r->cfg->controls_at_least_on)
        return refuse("refused by the assertion rule: at least %llu region(s) must stay on "
                      "(routing_controls.at_least_on), and switching %s off leaves %zu; use "
                      "--force to break glass",
                      (unsigned long long)r->cfg->controls_at_least_on, name, on_after);
    int64_t now = evbus__now_mono_ms(), since = now - r->last_change_ms;
    if (!force && since < r->cfg->controls_wait_ms)
        return refuse("refused by the gating rule: the last routing control change was %lld ms "
                      "ago, routing_controls.wait_period is %lld ms; wait, or use --force",
                      (long long)since, (long long)r->cfg->controls_wait_ms);
    char kv[160], command[200];
    snprintf(kv, sizeof kv, "control/%s=%s", name, on ? "on" : "off");
    snprintf(command, sizeof command, "evbus region %s %s%s", on ? "on" : "off", name,
             force ? " --force" : "");
    asker says = *a;
    says.command = command;
    char *audit = audit_detail("region", name, on ? "off" : "on", on ? "on" : "off", &says);
    const char *const one[] = {kv};
    bool stored = audit && store_changes(r, one, 1, "Routing Control Changed", audit);
    free(audit);
    if (!stored)
        return refuse("cannot reach the writer");
    r->on[idx] = on;
    r->last_change_ms = now;
    EVBUS_LOG_I("control", "routing control of region %s switched %s%s", name, on ? "on" : "off",
                force ? " (--force: safety rules overridden)" : "");
    return json_pack("{s:b, s:s, s:s, s:b, s:o}", "ok", 1, "region", name, "routing_control",
                     on ? "on" : "off", "changed", 1, on ? "also_resumes" : "also_holds",
                     unlisted_targets_in(r, name));
}

/* The application state machine: fence comes before failover and before
 * failback, so that nothing is in flight while a target changes sides. */
static const char *transition(const char *cmd, const char *cur, char *next, size_t len) {
    bool fenced = strncmp(cur, "fenced", 6) == 0;
    if (strcmp(cmd, "fence") == 0) {
        if (fenced)
            return "already fenced";
        snprintf(next, len, "fenced:%s", cur);
    } else if (strcmp(cmd, "unfence") == 0) {
        if (!fenced)
            return "not fenced";
        snprintf(next, len, "%s", cur[6] == ':' ? cur + 7 : "active");
    } else if (strcmp(cmd, "failover") == 0) {
        if (!fenced)
            return strcmp(cur, "failover") == 0
                       ? "already in failover"
                       : "fence it first (evbus region fence), so that nothing is in flight "
                         "while it moves";
        snprintf(next, len, "failover");
    } else { /* failback */
        if (!fenced)
            return "fence it first (evbus region fence), so that nothing is in flight while "
                   "it moves";
        snprintf(next, len, "active");
    }
    return NULL;
}

/* Why target t cannot fail back now, or NULL. A failback goes to the
 * target's primary; accepting it while the primary is unusable would only
 * end the fence: the selector keeps the target where it is, and (failback:
 * manual) nothing would ever move it back. So it is refused, and the
 * operator asks again once the primary is healthy (or unfences to stay). */
static const char *failback_blocked(evbus__control_regions *r, size_t t, char *why, size_t len) {
    const evbus__target_cfg *tc = evbus__config_target(r->cfg, t);
    int policy = tc->policy + 1; /* config.h: the choice's index */
    if ((policy != EVBUS_POLICY_FAILOVER && policy != EVBUS_POLICY_HOME) ||
        tc->n_delivery_regions == 0)
        return NULL; /* weighted, replicate: no primary to go back to */
    const char *primary = tc->primary ? tc->primary : tc->delivery_regions[0].name;
    for (size_t i = 0; i < r->n_regions; i++) {
        if (strcmp(r->names[i], primary) != 0)
            continue;
        evbus__region_status st;
        bool down = evbus__dispatch_region_status(r->dispatch, i, &st) == EVBUS_OK &&
                    st.health == EVBUS_HEALTH_UNHEALTHY;
        if (!r->on[i] || down) {
            snprintf(why, len,
                     "its primary %s is %s; try again once it is %s (or unfence to stay where "
                     "it is)",
                     primary, !r->on[i] ? "switched off" : "unhealthy",
                     !r->on[i] ? "switched on" : "healthy");
            return why;
        }
    }
    return NULL;
}

static json_t *change_app(evbus__control_regions *r, json_t *req, const char *cmd, const asker *a) {
    const char *target = json_string_value(json_object_get(req, "target"));
    long only = target ? evbus__config_target_index(r->cfg, target) : -1;
    if (target && (only < 0 || !routed(r->cfg, (size_t)only)))
        return refuse("no target '%s' with regions:", target);
    json_t *changed = json_array();
    char next[32], kv[2][300];
    size_t matched = 0;
    /* Every target is checked first: a command for all is done for all or
     * for none. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t t = 0; t < r->cfg->targets.n; t++) {
            if ((only >= 0 && (size_t)only != t) || !routed(r->cfg, t))
                continue;
            const char *name = evbus__config_target(r->cfg, t)->name;
            char blocked[256];
            const char *why = transition(cmd, r->app[t], next, sizeof next);
            if (!why && strcmp(cmd, "failback") == 0)
                why = failback_blocked(r, t, blocked, sizeof blocked);
            if (pass == 0) {
                matched++;
                if (why) {
                    json_decref(changed);
                    return refuse("target %s is %s: %s refused: %s", name, r->app[t], cmd, why);
                }
                continue;
            }
            snprintf(kv[0], sizeof kv[0], "app/%s=%s", name, next);
            /* Who asked is kept with the request: a failback applied only
             * after a restart is still audited as theirs. */
            snprintf(kv[1], sizeof kv[1], "failback/%s=%lld by %s", name,
                     (long long)evbus__now_wall_ms(), a->who ? a->who : "unknown");
            const char *const pairs[] = {kv[0], kv[1]};
            char command[200];
            snprintf(command, sizeof command, "evbus region %s%s%s", cmd, target ? " -t " : "",
                     target ? target : "");
            asker says = *a;
            says.command = command;
            char *audit = audit_detail("target", name, r->app[t], next, &says);
            bool stored = audit && store_changes(r, pairs, strcmp(cmd, "failback") == 0 ? 2 : 1,
                                                 "Application State Changed", audit);
            free(audit);
            if (!stored) {
                json_decref(changed);
                return refuse("cannot reach the writer");
            }
            EVBUS_LOG_I("control", "target %s: application state %s -> %s (%s)", name, r->app[t],
                        next, cmd);
            json_array_append_new(changed, json_pack("{s:s, s:s, s:s}", "target", name, "from",
                                                     r->app[t], "to", next));
            snprintf(r->app[t], sizeof r->app[t], "%s", next);
        }
    }
    if (!matched) {
        json_decref(changed);
        return refuse("no target has regions:");
    }
    return json_pack("{s:b, s:o}", "ok", 1, "changed", changed);
}

bool evbus__control_regions_changes_state(const char *cmd) {
    return strncmp(cmd, "region-", 7) == 0 && strcmp(cmd, "region-status") != 0;
}

json_t *evbus__control_regions_handle(evbus__control_regions *r, const char *cmd, json_t *req,
                                      const char *who) {
    asker a = {
        .who = who, .command = "", .reason = json_string_value(json_object_get(req, "reason"))};
    if (strcmp(cmd, "region-on") == 0)
        return switch_control(r, req, true, &a);
    if (strcmp(cmd, "region-off") == 0)
        return switch_control(r, req, false, &a);
    if (strcmp(cmd, "region-fence") == 0 || strcmp(cmd, "region-unfence") == 0 ||
        strcmp(cmd, "region-failover") == 0 || strcmp(cmd, "region-failback") == 0)
        return change_app(r, req, cmd + 7, &a);
    return NULL;
}

static json_t *recent_json(const evbus__check_record *v, size_t n) {
    json_t *recent = json_array();
    for (size_t k = 0; k < n; k++) {
        char at[32];
        evbus__format_time(v[k].at_ms, at);
        json_array_append_new(recent, json_pack("{s:s, s:b, s:o}", "at", at, "ok", v[k].ok,
                                                "detail", evbus__control_text(v[k].detail)));
    }
    return recent;
}

static json_t *children_status(evbus__control_regions *r, size_t region, size_t n) {
    json_t *list = json_array();
    for (size_t c = 0; c < n; c++) {
        evbus__child_status cs;
        if (evbus__dispatch_region_child(r->dispatch, region, c, &cs) != EVBUS_OK)
            continue;
        json_array_append_new(list, json_pack("{s:o, s:o}", "check", evbus__control_text(cs.check),
                                              "recent", recent_json(cs.recent, cs.n_recent)));
    }
    return list;
}

json_t *evbus__control_regions_status(evbus__control_regions *r) {
    json_t *list = json_array();
    size_t n = evbus__dispatch_region_count(r->dispatch);
    for (size_t i = 0; i < n; i++) {
        evbus__region_status st;
        if (evbus__dispatch_region_status(r->dispatch, i, &st) != EVBUS_OK)
            continue;
        json_t *recent = recent_json(st.recent, st.n_recent);
        const char *health = st.health == EVBUS_HEALTH_HEALTHY     ? "healthy"
                             : st.health == EVBUS_HEALTH_UNHEALTHY ? "unhealthy"
                                                                   : "unknown";
        /* The operators' view: what they last set, even before it is durable. */
        bool on = i < r->n_regions ? r->on[i] : st.control_on;
        json_t *region =
            json_pack("{s:s, s:s, s:s, s:b, s:o}", "name", st.name, "routing_control",
                      on ? "on" : "off", "health", health, "checked", st.checked, "recent", recent);
        /* A calculated check: "recent" holds its verdicts, and each child
         * check its own results. */
        if (region && st.n_children)
            json_object_set_new(region, "children", children_status(r, i, st.n_children));
        json_array_append_new(list, region);
    }
    return list;
}
