/* evbus status and evbus dlq: operators' commands over evbusd's control
 * socket (core/daemon/control.h has the protocol). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "cli.h"
#include "common/util.h"
#include "config.h"
#include "curve_opts.h"

/* The control endpoint: --control, $EVBUS_CONTROL, or the configuration's
 * control.listen (whose default sits in its data directory). */
static int find_endpoint(const char *control, const char *config, char *out, size_t outlen) {
    if (!control)
        control = getenv("EVBUS_CONTROL");
    if (control && *control) {
        snprintf(out, outlen, "%s", control);
        return 0;
    }
    evbus__config cfg;
    char err[2048];
    evbus__config_defaults(&cfg);
    if (evbus__config_load(&cfg, config, err, sizeof err) != EVBUS_OK) {
        fprintf(stderr, "evbus: %s\n(give the configuration with -c FILE, or --control ENDPOINT)\n",
                err);
        evbus__config_free(&cfg);
        return -1;
    }
    snprintf(out, outlen, "%s", cfg.control_listen);
    evbus__config_free(&cfg);
    return 0;
}

/* Sends one request and returns the parsed answer, or NULL after printing
 * why. */
static json_t *ask(const char *endpoint, const evbus__cli_curve *curve, json_t *req, int timeout) {
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_REQ);
    evbus__cli_curve_apply(curve, s);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    json_t *answer = NULL;
    char *text = json_dumps(req, JSON_COMPACT);
    /* ZeroMQ connects in the background and retries a refused ipc://
     * connect silently: say at once what waiting would not. */
    if (strncmp(endpoint, "ipc://", 6) == 0 && endpoint[6] != '@' && access(endpoint + 6, W_OK) &&
        errno == EACCES) {
        fprintf(stderr,
                "evbus: permission denied: %s is only for evbusd's user (or root); run this as "
                "that user\n",
                endpoint + 6);
    } else if (zmq_connect(s, endpoint) != 0) {
        fprintf(stderr, "evbus: cannot connect to %s: %s\n", endpoint, zmq_strerror(zmq_errno()));
    } else if (zmq_send(s, text, strlen(text), 0) < 0) {
        fprintf(stderr, "evbus: cannot send to %s: %s\n", endpoint, zmq_strerror(zmq_errno()));
    } else {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, s, 0) < 0) {
            fprintf(stderr, "evbus: no answer from %s within %d ms: is evbusd running?\n", endpoint,
                    timeout);
        } else {
            json_error_t jerr;
            /* Events' details may hold escaped NULs (dlq show). */
            answer = json_loadb(zmq_msg_data(&msg), zmq_msg_size(&msg), JSON_ALLOW_NUL, &jerr);
            if (!answer)
                fprintf(stderr, "evbus: unreadable answer: %s\n", jerr.text);
        }
        zmq_msg_close(&msg);
    }
    if (answer && !json_is_true(json_object_get(answer, "ok"))) {
        fprintf(stderr, "evbus: %s\n", json_string_value(json_object_get(answer, "error")));
        json_decref(answer);
        answer = NULL;
    }
    free(text);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return answer;
}

static json_int_t num(json_t *o, const char *key) {
    return json_integer_value(json_object_get(o, key));
}

/* The region a target delivers to, then its other regions in order of
 * preference: "us-east-1 (also us-west-2, eu-west-1)". */
static void format_regions(json_t *t, char *out, size_t len) {
    const char *active = json_string_value(json_object_get(t, "region"));
    int used = snprintf(out, len, "%s", active ? active : "-");
    size_t i, others = 0;
    json_t *r;
    json_array_foreach(json_object_get(t, "regions"), i, r) {
        const char *name = json_string_value(r);
        if (!name || (active && strcmp(name, active) == 0) || used < 0 || (size_t)used >= len)
            continue;
        used += snprintf(out + used, len - (size_t)used, "%s%s", others++ ? ", " : " (also ", name);
    }
    if (others && used >= 0 && (size_t)used < len)
        snprintf(out + used, len - (size_t)used, ")");
}

static void print_regions(json_t *st);

static void print_status(json_t *st) {
    json_t *in = json_object_get(st, "ingest"), *store = json_object_get(st, "store");
    printf("evbusd %s, region %s\n", json_string_value(json_object_get(st, "version")),
           json_string_value(json_object_get(st, "region")));
    printf("ingest: %lld accepted, %lld duplicate, %lld rejected, %lld retry later, %lld bad "
           "frames, %lld matched no rule\n",
           (long long)num(in, "accepted"), (long long)num(in, "duplicates"),
           (long long)num(in, "rejected"), (long long)num(in, "retry_later"),
           (long long)num(in, "bad_frames"), (long long)num(in, "unmatched"));
    /* Ids outlive their events (storage.dedup_window): a store can look
     * empty of events yet be full of ids, so they are shown too. */
    printf("store: %lld events, %lld pending deliveries, %lld ids kept for deduplication, %.1f of "
           "%.1f MiB used\n\n",
           (long long)num(store, "events"), (long long)num(store, "pending"),
           (long long)num(store, "ids"), (double)num(store, "map_used") / 1048576.0,
           (double)num(store, "map_size") / 1048576.0);
    if (num(store, "ids_forgotten_early"))
        printf("dedup window shortened: %lld ids forgotten early to make room; ids were kept "
               "%.0f s when it last happened (raise storage.map_size)\n\n",
               (long long)num(store, "ids_forgotten_early"),
               (double)num(store, "dedup_window_effective_ms") / 1000.0);
    printf("%-24s %-12s %10s %9s %12s %9s %9s %12s  %s\n", "TARGET", "PLUGIN", "PENDING",
           "IN FLIGHT", "DELIVERED", "RETRIED", "DEAD", "OLDEST AGE", "REGION");
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(st, "targets"), i, t) {
        const char *plugin = json_string_value(json_object_get(t, "plugin"));
        char regions[256];
        format_regions(t, regions, sizeof regions);
        printf("%-24s %-12s %10lld %9lld %12lld %9lld %9lld %10.1f s  %s\n",
               json_string_value(json_object_get(t, "name")), plugin ? plugin : "(none)",
               (long long)num(t, "pending"), (long long)num(t, "in_flight"),
               (long long)num(t, "delivered"), (long long)num(t, "retried"),
               (long long)num(t, "dead_lettered"), (double)num(t, "oldest_pending_age_ms") / 1000.0,
               regions);
    }
    print_regions(st);
    json_t *auth = json_object_get(st, "auth");
    if (json_is_true(json_object_get(auth, "producers_authenticated"))) {
        json_t *refused = json_object_get(auth, "refused_connections");
        printf("\nproducers (CURVE): %lld connections refused (unknown keys)\n",
               (long long)num(refused, "ingest"));
        printf("%-24s %-10s %12s %9s %9s\n", "PRODUCER", "KEY", "ACCEPTED", "REJECTED", "REFUSED");
        json_array_foreach(json_object_get(auth, "producers"), i, t) {
            printf("%-24s %-10s %12lld %9lld %9lld\n",
                   json_string_value(json_object_get(t, "name")),
                   json_is_true(json_object_get(t, "authorized")) ? "listed" : "revoked",
                   (long long)num(t, "accepted"), (long long)num(t, "rejected"),
                   (long long)num(t, "refused"));
        }
    }
    json_array_foreach(json_object_get(st, "targets"), i, t) {
        const char *fault = json_string_value(json_object_get(t, "target_fault"));
        if (fault)
            printf("\n%s: target fault (events are kept and retried): %s\n",
                   json_string_value(json_object_get(t, "name")), fault);
        const char *left = json_string_value(json_object_get(t, "previous_region_fault"));
        if (left)
            printf("\n%s: delivers to %s now; the last target fault was in %s\n",
                   json_string_value(json_object_get(t, "name")),
                   json_string_value(json_object_get(t, "route")), left);
        if (json_is_true(json_object_get(t, "held")))
            printf("\n%s: held, nothing is dispatched (events are kept): %s\n",
                   json_string_value(json_object_get(t, "name")),
                   json_string_value(json_object_get(t, "route_why")));
        if (json_is_true(json_object_get(t, "refusing_events")))
            printf("\n%s: %lld pending >= max_pending %lld: producers get RETRY_LATER for events "
                   "routed to it\n",
                   json_string_value(json_object_get(t, "name")), (long long)num(t, "pending"),
                   (long long)num(t, "max_pending"));
    }
}

/* "+ + - (last: 503)": a list of recent checks, oldest first, and the last
 * one's detail. */
static void format_recent(json_t *list, char *out, size_t len) {
    size_t used = 0, k;
    json_t *c;
    out[0] = '\0';
    json_array_foreach(list, k, c) {
        int w = snprintf(out + used, len - used, "%s%s", used ? " " : "",
                         json_is_true(json_object_get(c, "ok")) ? "+" : "-");
        if (w > 0 && used + (size_t)w < len)
            used += (size_t)w;
    }
    json_t *last = json_array_get(list, json_array_size(list) - 1);
    if (last)
        snprintf(out + used, len - used, " (last: %s)",
                 json_string_value(json_object_get(last, "detail")));
}

/* Regions: routing control, health with the recent checks (newest last;
 * a calculated check's verdicts, then each child check's own results on a
 * line of its own under it), then per target with regions where it
 * delivers now and why. */
static void print_regions(json_t *st) {
    json_t *regions = json_object_get(st, "regions");
    size_t i, k;
    json_t *r, *c;
    bool routed = false;
    json_array_foreach(json_object_get(st, "targets"), i, r) routed |=
        json_object_get(r, "route") != NULL;
    if (!routed)
        return;
    printf("\n%-16s %-8s %-10s  %s\n", "REGION", "CONTROL", "HEALTH",
           "RECENT CHECKS (oldest first)");
    json_array_foreach(regions, i, r) {
        char recent[768];
        format_recent(json_object_get(r, "recent"), recent, sizeof recent);
        json_t *children = json_object_get(r, "children");
        printf("%-16s %-8s %-10s  %s%s\n", json_string_value(json_object_get(r, "name")),
               json_string_value(json_object_get(r, "routing_control")),
               json_is_true(json_object_get(r, "checked"))
                   ? json_string_value(json_object_get(r, "health"))
                   : "(no check)",
               children && recent[0] ? "calculated: " : "", recent);
        json_array_foreach(children, k, c) {
            format_recent(json_object_get(c, "recent"), recent, sizeof recent);
            printf("  %-34s  %s\n", json_string_value(json_object_get(c, "check")), recent);
        }
    }
    printf("\n%-24s %-10s %-28s %s\n", "TARGET", "STATE", "DELIVERS TO", "WHY");
    json_array_foreach(json_object_get(st, "targets"), i, r) {
        if (!json_object_get(r, "route"))
            continue;
        const char *state = json_string_value(json_object_get(r, "app_state"));
        printf("%-24s %-10s %-28s %s\n", json_string_value(json_object_get(r, "name")),
               state ? state : "-", json_string_value(json_object_get(r, "route")),
               json_string_value(json_object_get(r, "route_why")));
        /* policy replicate: what each region still has to receive */
        const char *region;
        json_t *count;
        bool first = true;
        json_object_foreach(json_object_get(r, "owed"), region, count) {
            printf("%s%s %lld", first ? "  replicate, owed to: " : ", ", region,
                   (long long)json_integer_value(count));
            first = false;
        }
        if (!first)
            printf("\n");
    }
}

/* --since: an RFC 3339 time, or a duration back from now ("90m", "2h"). */
static int parse_since(const char *arg, int64_t *out_ms) {
    int64_t ago;
    if (evbus__cfg_parse_duration(arg, &ago) == 0) {
        *out_ms = evbus__now_wall_ms() - ago;
        return 0;
    }
    /* RFC 3339 allows t and z, and the wire accepts them. */
    char s[32];
    if (strlen(arg) >= sizeof s)
        return -1;
    for (size_t i = 0; (s[i] = arg[i]) != '\0'; i++)
        if (s[i] == 't' || s[i] == 'z')
            s[i] = (char)(s[i] - 'a' + 'A');
    struct tm tm = {0};
    int frac_ms = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) != 6 ||
        (strlen(s) != 20 && strlen(s) != 24) || s[strlen(s) - 1] != 'Z')
        return -1;
    if (strlen(s) == 24 && sscanf(s + 20, "%3d", &frac_ms) != 1)
        return -1;
    /* timegm() would quietly turn 2026-02-31 into 2026-03-03. */
    if (tm.tm_mday < 1 || tm.tm_mday > evbus__days_in_month(tm.tm_year, tm.tm_mon) ||
        tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *out_ms = (int64_t)timegm(&tm) * 1000 + frac_ms;
    return 0;
}

static void usage(FILE *out, const char *cmd) {
    fprintf(out,
            "usage: evbus %s [-c FILE | --control ENDPOINT] [--json]%s\n"
            "\n"
            "  -c, --config FILE      evbusd's configuration, to find its control socket\n"
            "                         (default evbus.yaml)\n"
            "      --control ENDPOINT the control socket itself (or $EVBUS_CONTROL)\n"
            "      --json             print the answer as JSON\n"
            "      --timeout MS       how long to wait for evbusd (default "
            "5000)\n" EVBUS__CLI_CURVE_HELP "\n"
            "dlq replay, dlq drop and replay change state: evbusd answers them on its ipc://\n"
            "socket to its own user, or over tcp:// with CURVE to a listed operator.\n",
            cmd,
            strcmp(cmd, "dlq list") == 0   ? " [-t TARGET] [-n LIMIT]"
            : strcmp(cmd, "dlq show") == 0 ? " -t TARGET --seq N"
            : strncmp(cmd, "dlq", 3) == 0  ? " -t TARGET"
            : strcmp(cmd, "replay") == 0   ? " -t TARGET --since TIME (RFC 3339, or 90m back)"
                                           : "");
}

static int run(int argc, char **argv, const char *cmd, json_t *req) {
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"control", required_argument, NULL, 'C'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"target", required_argument, NULL, 't'},
                                         {"limit", required_argument, NULL, 'n'},
                                         {"timeout", required_argument, NULL, 'T'},
                                         {"since", required_argument, NULL, 'S'},
                                         {"seq", required_argument, NULL, 'q'},
                                         {"force", no_argument, NULL, 'F'},
                                         {"reason", required_argument, NULL, 'R'},
                                         {"server-key", required_argument, NULL, 'K'},
                                         {"key", required_argument, NULL, 'Y'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config = "evbus.yaml", *control = NULL, *server_key = NULL, *key_file = NULL;
    int as_json = 0, timeout = 5000, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:t:n:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'C': control = optarg; break;
        case 'j': as_json = 1; break;
        case 't': json_object_set_new(req, "target", json_string(optarg)); break;
        case 'n': json_object_set_new(req, "limit", json_integer(atoll(optarg))); break;
        case 'T': timeout = atoi(optarg) > 0 ? atoi(optarg) : 5000; break;
        case 'q': json_object_set_new(req, "sequence", json_integer(atoll(optarg))); break;
        case 'F': json_object_set_new(req, "force", json_true()); break;
        case 'R': json_object_set_new(req, "reason", json_string(optarg)); break;
        case 'K': server_key = optarg; break;
        case 'Y': key_file = optarg; break;
        case 'S': {
            int64_t since;
            if (parse_since(optarg, &since)) {
                fprintf(stderr,
                        "evbus: --since wants a time such as 2026-11-23T17:00:00Z or a "
                        "duration back from now such as 90m, got '%s'\n",
                        optarg);
                return 2;
            }
            json_object_set_new(req, "since_ms", json_integer(since));
            break;
        }
        case 'h': usage(stdout, cmd); return 0;
        default: usage(stderr, cmd); return 2;
        }
    }
    char endpoint[512];
    if (find_endpoint(control, config, endpoint, sizeof endpoint))
        return 2;
    evbus__cli_curve curve;
    if (evbus__cli_curve_load(cmd, server_key, key_file, &curve))
        return 2;
    json_t *answer = ask(endpoint, &curve, req, timeout);
    explicit_bzero(curve.sec, sizeof curve.sec);
    if (!answer)
        return 1;
    if (as_json) {
        json_object_del(answer, "ok");
        json_dumpf(answer, stdout, JSON_INDENT(2));
        printf("\n");
    } else if (strcmp(cmd, "status") == 0) {
        print_status(answer);
    } else if (strcmp(cmd, "region status") == 0) {
        print_regions(answer);
    } else if (strcmp(cmd, "region on") == 0 || strcmp(cmd, "region off") == 0) {
        const char *region = json_string_value(json_object_get(answer, "region"));
        printf("region %s: routing control %s%s\n", region,
               json_string_value(json_object_get(answer, "routing_control")),
               json_is_true(json_object_get(answer, "changed")) ? "" : " (it already was)");
        /* Targets without regions: run in the router's own region, and
         * its routing control holds them as well. */
        bool off = strcmp(cmd, "region off") == 0;
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(answer, off ? "also_holds" : "also_resumes"), i, e)
            printf("also %s %s (no regions:, runs in %s)\n", off ? "holds" : "resumes",
                   json_string_value(e), region);
    } else if (strncmp(cmd, "region ", 7) == 0) {
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(answer, "changed"), i, e)
            printf("%s: %s -> %s\n", json_string_value(json_object_get(e, "target")),
                   json_string_value(json_object_get(e, "from")),
                   json_string_value(json_object_get(e, "to")));
    } else if (strcmp(cmd, "dlq show") == 0) {
        json_t *dl = json_object_get(answer, "dead_letter");
        json_t *raw = json_incref(json_object_get(dl, "event_json"));
        json_t *why = json_incref(json_object_get(dl, "event_json_why"));
        json_object_del(dl, "event_json");
        json_object_del(dl, "event_json_why");
        json_dumpf(dl, stdout, JSON_INDENT(2));
        printf("\n");
        /* An event that evbusd could not hold as a JSON object (\u0000 in a
         * key, 1e400) is printed as the text it stored. */
        if (raw)
            printf("event (raw JSON text, not reformatted: %s):\n%s\n",
                   json_string_value(why) ? json_string_value(why) : "?", json_string_value(raw));
        json_decref(raw);
        json_decref(why);
    } else if (strcmp(cmd, "dlq replay") == 0) {
        printf("%lld dead letters queued for delivery again\n", (long long)num(answer, "replayed"));
    } else if (strcmp(cmd, "dlq drop") == 0) {
        printf("%lld dead letters dropped\n", (long long)num(answer, "dropped"));
    } else if (strcmp(cmd, "replay") == 0) {
        printf("%lld stored events queued for delivery again%s\n",
               (long long)num(answer, "replayed"),
               json_is_true(json_object_get(answer, "more"))
                   ? " (the first 100000: run again with a later --since for the rest)"
                   : "");
    } else {
        size_t i;
        json_t *e;
        json_t *list = json_object_get(answer, "dead_letters");
        json_array_foreach(list, i, e) {
            printf("%s seq=%lld id=%s attempts=%lld dead_at=%s: %s\n",
                   json_string_value(json_object_get(e, "target")), (long long)num(e, "sequence"),
                   json_string_value(json_object_get(e, "id")), (long long)num(e, "attempts"),
                   json_string_value(json_object_get(e, "dead_at")),
                   json_string_value(json_object_get(e, "reason")));
        }
        if (json_array_size(list) == 0)
            printf("no dead letters\n");
    }
    json_decref(answer);
    return 0;
}

int evbus__cmd_status(int argc, char **argv) {
    json_t *req = json_pack("{s:s}", "cmd", "status");
    int rc = run(argc, argv, "status", req);
    json_decref(req);
    return rc;
}

int evbus__cmd_dlq(int argc, char **argv) {
    static const char *const subs[][3] = {{"list", "dlq", "dlq list"},
                                          {"show", "dlq-show", "dlq show"},
                                          {"replay", "dlq-replay", "dlq replay"},
                                          {"drop", "dlq-drop", "dlq drop"}};
    for (size_t i = 0; argc >= 2 && i < sizeof subs / sizeof subs[0]; i++) {
        if (strcmp(argv[1], subs[i][0]) != 0)
            continue;
        json_t *req = json_pack("{s:s}", "cmd", subs[i][1]);
        int rc = run(argc - 1, argv + 1, subs[i][2], req);
        json_decref(req);
        return rc;
    }
    fprintf(stderr, "usage: evbus dlq list   [-t TARGET] [-n LIMIT]   dead letters and why\n"
                    "       evbus dlq show   -t TARGET --seq N       one, with its event\n"
                    "       evbus dlq replay -t TARGET               deliver them again\n"
                    "       evbus dlq drop   -t TARGET               delete them\n"
                    "  (each also takes -c FILE | --control ENDPOINT, --json, --timeout MS)\n");
    return 2;
}

int evbus__cmd_replay(int argc, char **argv) {
    json_t *req = json_pack("{s:s, s:I}", "cmd", "replay", "since_ms", (json_int_t)0);
    int rc = run(argc, argv, "replay", req);
    json_decref(req);
    return rc;
}

int evbus__cmd_region(int argc, char **argv) {
    static const char *const subs[][3] = {{"status", "region-status", "region status"},
                                          {"on", "region-on", "region on"},
                                          {"off", "region-off", "region off"},
                                          {"fence", "region-fence", "region fence"},
                                          {"unfence", "region-unfence", "region unfence"},
                                          {"failover", "region-failover", "region failover"},
                                          {"failback", "region-failback", "region failback"}};
    for (size_t i = 0; argc >= 2 && i < sizeof subs / sizeof subs[0]; i++) {
        if (strcmp(argv[1], subs[i][0]) != 0)
            continue;
        json_t *req = json_pack("{s:s}", "cmd", subs[i][1]);
        int rc;
        if (i == 1 || i == 2) { /* on|off REGION */
            if (argc < 3 || argv[2][0] == '-') {
                fprintf(stderr, "usage: evbus region %s REGION [--force]\n", argv[1]);
                json_decref(req);
                return 2;
            }
            json_object_set_new(req, "region", json_string(argv[2]));
            rc = run(argc - 2, argv + 2, subs[i][2], req);
        } else {
            rc = run(argc - 1, argv + 1, subs[i][2], req);
        }
        json_decref(req);
        return rc;
    }
    fprintf(stderr,
            "usage: evbus region status                   health, routing controls, routes\n"
            "       evbus region on|off REGION [--force]  switch a routing control (--force:\n"
            "                                             past the assertion and gating rules)\n"
            "       evbus region fence|unfence [-t TARGET]   stop / resume dispatching\n"
            "       evbus region failover|failback [-t TARGET] move a fenced target off its\n"
            "                                             primary / back to it\n"
            "  (each also takes -c FILE | --control ENDPOINT, --json, --timeout MS; changes\n"
            "   take --reason TEXT, kept in their audit event, source evbus.region)\n");
    return 2;
}
