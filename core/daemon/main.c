/* evbusd: the evbus router daemon. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <zmq.h>

#include "auth.h"
#include "common/log.h"
#include "config.h"
#include "control.h"
#include "dispatch.h"
#include "endpoint.h"
#include "http_ingest.h"
#include "ingest.h"
#include "metrics.h"
#include "routing.h"
#include "store.h"

static volatile sig_atomic_t stop_requested, reload_requested, http_reload_requested;

static void on_signal(int sig) {
    if (sig == SIGHUP) {
        /* One flag per thread that reloads, each clearing its own: the
         * authentication thread (CURVE key lists), the HTTP ingest
         * (ingest.http.credentials). */
        reload_requested = 1;
        http_reload_requested = 1;
    } else {
        stop_requested = 1;
    }
}

/* Raises the soft limit on open files to the hard one: every producer
 * connection, plugin connection and control client holds a descriptor, and
 * a soft limit of 1024 (the usual default) is soon reached. Logged, so that
 * an operator sees what evbusd has to work with. */
static void raise_nofile(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t was = rl.rlim_cur;
    /* Linux refuses an infinite limit above fs.nr_open: settle for that. */
    rlim_t want = rl.rlim_max == RLIM_INFINITY ? (rlim_t)1 << 20 : rl.rlim_max;
    if (want > rl.rlim_cur) {
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            rl.rlim_cur = was;
    }
    if (rl.rlim_cur != was)
        EVBUS_LOG_I("evbusd", "open files limit: %llu (raised from %llu)",
                    (unsigned long long)rl.rlim_cur, (unsigned long long)was);
    else
        EVBUS_LOG_I("evbusd", "open files limit: %llu", (unsigned long long)rl.rlim_cur);
}

static void usage(FILE *out) {
    fprintf(out, "usage: evbusd [--config FILE] [--check-config]\n"
                 "\n"
                 "Runs the evbus router: accepts events from producers over ZeroMQ, makes each\n"
                 "one durable before it acks, and routes it.\n"
                 "\n"
                 "  -c, --config FILE   configuration (default: evbus.yaml)\n"
                 "      --check-config  validate the configuration and exit (0 valid, 1 not)\n"
                 "  -V, --version       print the version\n"
                 "  -h, --help          this text\n");
}

int main(int argc, char **argv) {
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"check-config", no_argument, NULL, 'k'},
                                         {"version", no_argument, NULL, 'V'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config_path = "evbus.yaml";
    int check_only = 0, c;
    while ((c = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config_path = optarg; break;
        case 'k': check_only = 1; break;
        case 'V': printf("evbusd %s\n", EVBUS_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "evbusd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    evbus__config cfg;
    char err[4096];
    evbus__config_defaults(&cfg);
    if (evbus__config_load(&cfg, config_path, err, sizeof err) != EVBUS_OK) {
        fprintf(stderr, "evbusd: configuration is invalid:\n%s\n", err);
        evbus__config_free(&cfg);
        return 1;
    }
    evbus__router *router = NULL;
    if (evbus__router_new(&cfg, &router, err, sizeof err) != EVBUS_OK) {
        fprintf(stderr, "evbusd: configuration is invalid:\n%s\n", err);
        evbus__config_free(&cfg);
        return 1;
    }
    if (check_only) {
        /* Both, so that every problem is reported in one run. */
        char err2[4096];
        evbus_err drc = evbus__dispatch_check(&cfg, err, sizeof err);
        evbus_err arc = evbus__auth_check(&cfg, err2, sizeof err2);
        if (drc != EVBUS_OK || arc != EVBUS_OK) {
            fprintf(stderr, "evbusd: configuration is invalid:\n%s%s%s\n", drc ? err : "",
                    drc && arc ? "\n" : "", arc ? err2 : "");
            evbus__router_destroy(&router);
            evbus__config_free(&cfg);
            return 1;
        }
        printf("%s: configuration is valid (%zu targets, %zu rules)\n", config_path, cfg.targets.n,
               cfg.rules.n);
        evbus__router_destroy(&router);
        evbus__config_free(&cfg);
        return 0;
    }
    evbus__log_threshold = (evbus__log_level)cfg.log_level;

    int status = 1;
    void *zctx = NULL;
    evbus__store *store = NULL;
    evbus__ingest *ing = NULL;
    evbus__dispatch *dispatch = NULL;
    evbus__control *control = NULL;
    evbus__metrics *metrics = NULL;
    evbus__http_ingest *http = NULL;
    /* Outlives the control thread, which reads it. */
    static evbus__http_counters http_counters;
    evbus__auth *auth = NULL;
    evbus__ipc_claims *claims = NULL;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    /* SIGHUP (`systemctl reload evbusd`) re-reads the CURVE key lists and
     * the HTTP access keys; it never ends the router. */
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Over a file size limit, writes then fail with EFBIG, which the store treats
     * as a full disk, instead of the signal killing evbusd. */
    signal(SIGXFSZ, SIG_IGN);
    raise_nofile();

    if (evbus__store_open(cfg.data_dir, cfg.map_size, &store, err, sizeof err) != EVBUS_OK) {
        EVBUS_LOG_E("evbusd", "%s", err);
        goto out;
    }
    evbus__store_set_retention(store, cfg.retention_ms, (uint32_t)cfg.targets.n);
    /* Before anything binds: another evbusd (with another data directory)
     * may hold one of our ipc:// paths, and binding would take it over. */
    if (evbus__ipc_claim_all(&cfg, &claims, err, sizeof err) != EVBUS_OK) {
        EVBUS_LOG_E("evbusd", "%s", err);
        goto out;
    }
    zctx = zmq_ctx_new();
    if (!zctx) {
        EVBUS_LOG_E("evbusd", "cannot create ZeroMQ context: %s", zmq_strerror(errno));
        goto out;
    }
    /* The authentication handler is bound before any socket that needs it:
     * libzmq lets every CURVE client in while none is bound. */
    if (evbus__auth_new(&cfg, zctx, &auth, err, sizeof err) != EVBUS_OK ||
        evbus__auth_start(auth, &reload_requested) != EVBUS_OK) {
        EVBUS_LOG_E("evbusd", "%s", auth ? "cannot start the authentication thread" : err);
        goto out;
    }
    /* With neither rules nor a catch-all there is nothing to route to, and
     * matching would only cost time. */
    bool routing = cfg.rules.n > 0 || cfg.catch_all_target;
    /* The dispatcher binds its wake-up socket before the writer connects to
     * it: a ZeroMQ pipe made by a connect that came first was seen to leave
     * the first wake-ups unsignalled, and delivery waited for the periodic
     * scan. */
    if (evbus__dispatch_new(&cfg, store, zctx, EVBUS__RESULTS_ENDPOINT, EVBUS__WAKE_ENDPOINT,
                            &dispatch, err, sizeof err) != EVBUS_OK) {
        EVBUS_LOG_E("evbusd", "%s", err);
        goto out;
    }
    if (evbus__ingest_new(&cfg, store, routing ? router : NULL, auth, zctx, &ing, err,
                          sizeof err) != EVBUS_OK) {
        EVBUS_LOG_E("evbusd", "%s", err);
        goto out;
    }
    if (evbus__dispatch_start(dispatch) != EVBUS_OK) {
        EVBUS_LOG_E("evbusd", "cannot start the delivery thread");
        goto out;
    }
    if (evbus__control_start(&cfg, store, ing, dispatch, auth, zctx, &control, err, sizeof err) !=
        EVBUS_OK) {
        EVBUS_LOG_E("evbusd", "%s", err);
        goto out;
    }
    if (cfg.http_listen)
        evbus__control_set_http(control, &http_counters);
    if (evbus__metrics_start(&cfg, control, &metrics, err, sizeof err) != EVBUS_OK) {
        EVBUS_LOG_E("evbusd", "%s", err);
        goto out;
    }
    if (metrics)
        EVBUS_LOG_I("evbusd", "metrics on http://%s/metrics", cfg.metrics_listen);
    /* After the ingest: its requests go to the ingest loop's HTTP socket. */
    if (evbus__http_ingest_start(&cfg, zctx, &http_counters, &http_reload_requested, &http, err,
                                 sizeof err) != EVBUS_OK) {
        EVBUS_LOG_E("evbusd", "%s", err);
        goto out;
    }
    evbus__store_stats st;
    evbus__store_stats_get(store, &st);
    EVBUS_LOG_I("evbusd", "control socket on %s", cfg.control_listen);
    EVBUS_LOG_I("evbusd",
                "ready: region %s, data dir %s (%llu events stored, %llu pending deliveries, "
                "next sequence %llu), %zu rules to %zu targets",
                cfg.region, cfg.data_dir, (unsigned long long)st.events,
                (unsigned long long)st.pending, (unsigned long long)st.next_seq, cfg.rules.n,
                cfg.targets.n);

    evbus_err rc = evbus__ingest_run(ing, &stop_requested);
    /* The ingest has answered every request it read, HTTP ones included;
     * the HTTP side passes those answers on, then stops. */
    evbus__http_ingest_stop(&http);
    /* Delivery stops before the writer, which records its last results. */
    evbus__dispatch_stop(dispatch);
    evbus__ingest_counters k;
    evbus__ingest_counters_get(ing, &k);
    EVBUS_LOG_I("evbusd",
                "stopped: %llu accepted, %llu duplicate, %llu rejected, %llu retry-later, "
                "%llu bad frames, %llu commits, %llu matched no rule",
                (unsigned long long)k.accepted, (unsigned long long)k.duplicates,
                (unsigned long long)k.rejected, (unsigned long long)k.retry_later,
                (unsigned long long)k.bad_frames, (unsigned long long)k.commits,
                (unsigned long long)k.unmatched);
    status = rc == EVBUS_OK ? 0 : 1;

out:
    evbus__http_ingest_stop(&http);
    evbus__metrics_destroy(&metrics);
    evbus__control_destroy(&control);
    evbus__dispatch_stop(dispatch);
    evbus__ingest_destroy(&ing);
    evbus__dispatch_destroy(&dispatch);
    /* Last of the sockets: a CURVE socket without a handler lets anyone in. */
    evbus__auth_destroy(&auth);
    if (zctx)
        zmq_ctx_term(zctx);
    evbus__ipc_claims_release(&claims);
    evbus__store_close(&store);
    evbus__router_destroy(&router);
    evbus__config_free(&cfg);
    return status;
}
