/* evbus-bench-sinks: events/s of the AWS sink plugins against an endpoint
 * that answers their protocol at once, side by side with a bare
 * libcurl-multi loop sending the same requests to the same endpoint; the
 * publish-to-delivered latency at half the plugin path's rate (open loop);
 * and, for the record, events/s against moto. Each evbusd run has its own
 * data directory and configuration; the sinks it knows are the rows of
 * shape.c. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "bare.h"
#include "host.h"
#include "load.h"
#include "moto_run.h"
#include "pace.h"
#include "proc.h"
#include "responder.h"
#include "shape.h"

#define MAX_RUNS 99
/* A run fails when deliveries stop advancing for this long. */
#define STALL_MS     15000
#define READY_SOURCE "com.example.bench.ready"
#define REGION       "us-east-1"
/* Credentials for the instant responder, which does not check them; curl
 * signs with them all the same, as it would for AWS. */
#define FAKE_KEY_ID "AKIDBENCHSINKS000000"
#define FAKE_SECRET "bench/sinks/not-a-secret/000000000000000"

const char *bench_name = "bench-sinks";

typedef struct options {
    unsigned runs;
    double duration_s, warmup_s;
    int sinks[8];
    size_t size;
    unsigned concurrency; /* the target's max_in_flight, the bare loop's requests */
    uint64_t drain_events, moto_events;
    unsigned moto_concurrency; /* max_in_flight against moto, which is one Python process */
    double rate;               /* the latency run's events/s; 0: half the plugin path's */
    size_t rate_batch;
    int moto; /* 1: run against moto_server when it is installed */
    const char *evbusd, *plugin_dir, *tmpdir;
    char evbusd_found[PATH_MAX], plugin_dir_found[PATH_MAX];
    int keep, verbose;
    double start_timeout_s; /* how long evbusd may take to accept its first event */
} options;

/* One evbusd: its directory, log and process. */
typedef struct server {
    char dir[PATH_MAX - 64];
    char log[PATH_MAX];
    char zmq[64]; /* its ingest endpoint */
    pid_t pid;    /* 0 once reaped */
    int status;
} server;

/* What one run of one sink measured. */
typedef struct run {
    double plugin_eps, bare_eps, ratio;
    double plugin_us, bare_us; /* CPU per event: evbusd (all threads), the bare loop's thread */
    double rss_mib;            /* evbusd's VmHWM after the drain */
    double p50_ms, p99_ms;     /* open loop */
    double open_eps;           /* events/s the open loop delivered while measuring */
    double late_ms;            /* the producer's worst lag behind its schedule */
    uint64_t redelivered;      /* entries beyond one per preloaded event */
    char error[256];
} run;

__attribute__((format(printf, 3, 4))) static void say(char *buf, size_t len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: evbus-bench-sinks [options]\n"
            "\n"
            "Events/s of the AWS sink plugins through evbusd against an endpoint that answers\n"
            "at once, next to a bare libcurl-multi loop sending the same requests; latency at\n"
            "half that rate; events/s against moto_server.\n"
            "\n"
            "  --runs N            runs per sink; each figure is the median (default 3)\n"
            "  --duration S        measured seconds of the bare and open loops (default 3)\n"
            "  --warmup S          seconds before measuring (default 0.5)\n"
            "  --quick             smoke run: 1 run, tiny counts (what ctest runs)\n"
            "  --sinks LIST        sinks to drive (default: all; see below)\n"
            "  --size N            event size (id + source + detail type + detail; default 256)\n"
            "  --concurrency N     requests in flight: the target's max_in_flight and the\n"
            "                      bare loop's (default 64)\n"
            "  --drain-events N    events preloaded and then delivered (default 200000)\n"
            "  --rate N            latency run at N events/s (default: half the plugin path)\n"
            "  --rate-batch N      events per publish request in the latency run (default 10)\n"
            "  --moto-events N     events delivered to moto_server (default 500)\n"
            "  --moto-concurrency N  max_in_flight against moto_server (default 16: more\n"
            "                      overloads it into delivery timeouts)\n"
            "  --no-moto           skip moto_server\n"
            "  --evbusd PATH       the daemon (default: core/evbusd of this build tree)\n"
            "  --plugin-dir DIR    where the sink plugins are (default: lib/evbus/plugins of\n"
            "                      this build tree)\n"
            "  --tmpdir DIR        where run directories go (default: $TMPDIR or /tmp)\n"
            "  --keep              keep run directories and server logs\n"
            "  --start-timeout S   how long evbusd may take to start (default 15; more for\n"
            "                      an evbusd under valgrind: --evbusd can be a script)\n"
            "  -v, --verbose       a line per phase, with evbusd's pid (for perf -p)\n"
            "  -h, --help          this text\n"
            "\n"
            "sinks:");
    for (size_t i = 0; i < n_sink_shapes; i++)
        fprintf(out, " %s", sink_shapes[i].name);
    fprintf(out, "\n");
}

static int parse_sinks(const char *arg, int *sinks) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", arg);
    memset(sinks, 0, n_sink_shapes * sizeof *sinks);
    int any = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        int found = 0;
        for (size_t i = 0; i < n_sink_shapes; i++)
            if (strcmp(tok, sink_shapes[i].name) == 0)
                sinks[i] = found = any = 1;
        if (!found)
            return -1;
    }
    return any ? 0 : -1;
}

/* A directory of this build tree, relative to this program's. */
static int beside_self(const char *rel, char *out, size_t len) {
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    int w = snprintf(out, len, "%s/%s", self, rel);
    if (w < 0 || (size_t)w >= len)
        return -1;
    return access(out, R_OK);
}

static int parse_options(int argc, char **argv, options *o) {
    enum {
        O_RUNS = 256,
        O_DUR,
        O_WARM,
        O_QUICK,
        O_SINKS,
        O_SIZE,
        O_CONC,
        O_DRAIN,
        O_RATE,
        O_RATEB,
        O_MOTOEV,
        O_NOMOTO,
        O_MOTOCONC,
        O_EVBUSD,
        O_PDIR,
        O_TMP,
        O_KEEP,
        O_START
    };
    static const struct option lo[] = {{"runs", required_argument, NULL, O_RUNS},
                                       {"duration", required_argument, NULL, O_DUR},
                                       {"warmup", required_argument, NULL, O_WARM},
                                       {"quick", no_argument, NULL, O_QUICK},
                                       {"sinks", required_argument, NULL, O_SINKS},
                                       {"size", required_argument, NULL, O_SIZE},
                                       {"concurrency", required_argument, NULL, O_CONC},
                                       {"drain-events", required_argument, NULL, O_DRAIN},
                                       {"rate", required_argument, NULL, O_RATE},
                                       {"rate-batch", required_argument, NULL, O_RATEB},
                                       {"moto-events", required_argument, NULL, O_MOTOEV},
                                       {"no-moto", no_argument, NULL, O_NOMOTO},
                                       {"moto-concurrency", required_argument, NULL, O_MOTOCONC},
                                       {"evbusd", required_argument, NULL, O_EVBUSD},
                                       {"plugin-dir", required_argument, NULL, O_PDIR},
                                       {"tmpdir", required_argument, NULL, O_TMP},
                                       {"keep", no_argument, NULL, O_KEEP},
                                       {"start-timeout", required_argument, NULL, O_START},
                                       {"verbose", no_argument, NULL, 'v'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    int quick = 0, have_runs = 0, have_dur = 0, have_warm = 0, have_drain = 0, have_moto = 0;
    int have_sinks = 0, c;
    size_t v;
    o->runs = 3;
    o->duration_s = 3;
    o->warmup_s = 0.5;
    o->start_timeout_s = 15;
    o->size = 256;
    o->concurrency = 64;
    o->drain_events = 200000;
    o->moto_events = 500;
    o->moto_concurrency = 16;
    o->rate_batch = 10;
    o->moto = 1;
    o->tmpdir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    while ((c = getopt_long(argc, argv, "vh", lo, NULL)) != -1) {
        switch (c) {
        case O_RUNS:
            if (bench_parse_size(optarg, &v) || v < 1 || v > MAX_RUNS)
                goto bad;
            o->runs = (unsigned)v;
            have_runs = 1;
            break;
        case O_DUR:
            if (bench_parse_seconds(optarg, &o->duration_s))
                goto bad;
            have_dur = 1;
            break;
        case O_WARM:
            if (bench_parse_seconds(optarg, &o->warmup_s))
                goto bad;
            have_warm = 1;
            break;
        case O_QUICK: quick = 1; break;
        case O_SINKS:
            if (parse_sinks(optarg, o->sinks))
                goto bad;
            have_sinks = 1;
            break;
        case O_SIZE:
            if (bench_parse_size(optarg, &o->size) ||
                o->size < BENCH_MIN_EVENT_SIZE + BENCH_STAMP_LEN || o->size > 200 * 1024)
                goto bad;
            break;
        case O_CONC:
            if (bench_parse_size(optarg, &v) || v < 1 || v > 1024)
                goto bad;
            o->concurrency = (unsigned)v;
            break;
        case O_DRAIN:
            if (bench_parse_size(optarg, &v) || v < 100)
                goto bad;
            o->drain_events = v;
            have_drain = 1;
            break;
        case O_RATE:
            if (bench_parse_size(optarg, &v) || v < 1)
                goto bad;
            o->rate = (double)v;
            break;
        case O_RATEB:
            if (bench_parse_size(optarg, &o->rate_batch) || o->rate_batch < 1 ||
                o->rate_batch > 1000)
                goto bad;
            break;
        case O_MOTOEV:
            if (bench_parse_size(optarg, &v) || v < 10)
                goto bad;
            o->moto_events = v;
            have_moto = 1;
            break;
        case O_NOMOTO: o->moto = 0; break;
        case O_MOTOCONC:
            if (bench_parse_size(optarg, &v) || v < 1 || v > 1024)
                goto bad;
            o->moto_concurrency = (unsigned)v;
            break;
        case O_EVBUSD: o->evbusd = optarg; break;
        case O_PDIR: o->plugin_dir = optarg; break;
        case O_TMP: o->tmpdir = optarg; break;
        case O_KEEP: o->keep = 1; break;
        case O_START:
            if (bench_parse_seconds(optarg, &o->start_timeout_s) || o->start_timeout_s < 1)
                goto bad;
            break;
        case 'v': o->verbose = 1; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "evbus-bench-sinks: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (quick) {
        o->runs = have_runs ? o->runs : 1;
        o->duration_s = have_dur ? o->duration_s : 0.5;
        o->warmup_s = have_warm ? o->warmup_s : 0.2;
        o->drain_events = have_drain ? o->drain_events : 3000;
        o->moto_events = have_moto ? o->moto_events : 100;
    }
    if (!have_sinks)
        for (size_t i = 0; i < n_sink_shapes; i++)
            o->sinks[i] = 1;
    if (!o->evbusd) {
        if (bench_find_evbusd(o->evbusd_found, sizeof o->evbusd_found)) {
            fprintf(stderr, "evbus-bench-sinks: cannot find evbusd next to this program; "
                            "build the evbusd target or give --evbusd PATH\n");
            return -1;
        }
        o->evbusd = o->evbusd_found;
    }
    if (!o->plugin_dir) {
        if (beside_self("../../lib/evbus/plugins", o->plugin_dir_found,
                        sizeof o->plugin_dir_found)) {
            fprintf(stderr, "evbus-bench-sinks: cannot find lib/evbus/plugins in this build "
                            "tree; build the plugins or give --plugin-dir DIR\n");
            return -1;
        }
        o->plugin_dir = o->plugin_dir_found;
    }
    return 0;
bad:
    fprintf(stderr, "evbus-bench-sinks: invalid value '%s' for --%s (see --help)\n", optarg,
            lo[c - O_RUNS].name);
    return -1;
}

/* Writes the configuration: one target with the sink under test at
 * `sink_url` (its resource in moto, or NULL) -- or with no plugin at all
 * when sink_url is NULL, so that its events wait pending --, one rule
 * sending the benchmark's events (not the start-up probe) to it, metrics on
 * `metrics_port` when it is not 0. */
static int write_config(const options *o, const sink_shape *sh, server *s, const char *sink_url,
                        const char *resource, int metrics_port, char *err, size_t errlen) {
    char cfg[PATH_MAX];
    snprintf(cfg, sizeof cfg, "%s/evbus.yaml", s->dir);
    FILE *f = fopen(cfg, "w");
    if (!f) {
        say(err, errlen, "%s: cannot write: %s", cfg, strerror(errno));
        return -1;
    }
    fprintf(f,
            "region: " REGION "\n"
            "log_level: info\n"
            "plugin_dir: %s\n"
            "ingest:\n"
            "  listen:\n"
            "    - %s\n"
            "storage:\n"
            "  data_dir: data\n"
            "  map_size: 8GiB\n",
            o->plugin_dir, s->zmq);
    if (metrics_port)
        fprintf(f, "metrics:\n  listen: 127.0.0.1:%d\n", metrics_port);
    fprintf(f, "targets:\n  - name: sink\n");
    if (sink_url) {
        fprintf(f, "    plugin: %s\n    config:\n", sh->plugin);
        sh->write_config(f, sink_url, resource);
    }
    fprintf(f,
            "    batch_max_events: %zu\n"
            "    max_in_flight: %u\n"
            "rules:\n"
            "  - name: bench\n"
            "    pattern: {source: [" BENCH_SOURCE "]}\n"
            "    targets: [sink]\n",
            sh->max_entries, o->concurrency);
    if (fclose(f) != 0) {
        say(err, errlen, "%s: cannot write: %s", cfg, strerror(errno));
        return -1;
    }
    return 0;
}

static int server_alive(server *s) {
    if (s->pid && !bench_alive(s->pid, &s->status))
        s->pid = 0;
    return s->pid != 0;
}

/* Starts evbusd on the configuration in s->dir and waits until it stores. */
static int server_start(const options *o, server *s, char *err, size_t errlen) {
    char cfg[PATH_MAX];
    snprintf(cfg, sizeof cfg, "%s/evbus.yaml", s->dir);
    char *argv[] = {(char *)o->evbusd, "--config", cfg, NULL};
    if (bench_spawn(argv, s->log, &s->pid, err, errlen))
        return -1;
    if (bench_evbusd_wait_ready(s->zmq, READY_SOURCE, &s->pid, &s->status,
                                (int)(o->start_timeout_s * 1000), err, errlen))
        return -1;
    if (o->verbose)
        fprintf(stderr, "bench-sinks: evbusd pid %ld in %s\n", (long)s->pid, s->dir);
    return 0;
}

/* Stops evbusd; one that does not stop cleanly fails the run. */
static int server_stop(server *s, char *err, size_t errlen) {
    if (!s->pid)
        return 0;
    char why[256];
    int rc = bench_stop(s->pid, 15000, why, sizeof why);
    s->pid = 0;
    if (rc != 0) {
        say(err, errlen, "evbusd did not stop cleanly: %s", why);
        return -1;
    }
    return 0;
}

static int server_new(const options *o, server *s, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    if (bench_tmpdir_new(o->tmpdir, "sinks", s->dir, sizeof s->dir)) {
        say(err, errlen, "cannot create a directory in %s: %s", o->tmpdir, strerror(errno));
        return -1;
    }
    snprintf(s->log, sizeof s->log, "%s/server.log", s->dir);
    int port = bench_free_port();
    if (port < 0) {
        say(err, errlen, "no free loopback port");
        return -1;
    }
    snprintf(s->zmq, sizeof s->zmq, "tcp://127.0.0.1:%d", port);
    return 0;
}

/* Waits until count() reaches `want` while it keeps moving. */
static int wait_count(server *s, uint64_t (*count)(void *), void *arg, uint64_t want, char *err,
                      size_t errlen) {
    uint64_t seen = count(arg), last_progress = bench_now_ns();
    while (seen < want) {
        if (bench_interrupted) {
            say(err, errlen, "interrupted");
            return -1;
        }
        if (!server_alive(s)) {
            say(err, errlen, "evbusd ended with %llu of %llu events delivered",
                (unsigned long long)seen, (unsigned long long)want);
            return -1;
        }
        if (bench_now_ns() - last_progress > (uint64_t)STALL_MS * 1000000u) {
            say(err, errlen, "delivery stalled at %llu of %llu events for %d s",
                (unsigned long long)seen, (unsigned long long)want, STALL_MS / 1000);
            return -1;
        }
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
        uint64_t n = count(arg);
        if (n != seen)
            last_progress = bench_now_ns();
        seen = n;
    }
    return 0;
}

static uint64_t responder_count(void *r) {
    return responder_entries(r);
}

/* Preloads `events` into a fresh evbusd whose target has no plugin yet
 * (its events wait pending, never attempted, so no retry is scheduled), and
 * stops it. The next start, with the sink configured, delivers the backlog
 * with nothing else to do: the plugin path alone. */
static int preload(const options *o, const sink_shape *sh, server *s, uint64_t events,
                   uint32_t nonce, char *err, size_t errlen) {
    if (write_config(o, sh, s, NULL, NULL, 0, err, errlen) || server_start(o, s, err, errlen))
        return -1;
    pace_opts po = {.endpoint = s->zmq,
                    .event_size = o->size,
                    .batch = 100,
                    .window = 64,
                    .events = events,
                    .nonce = nonce};
    pace_result pr;
    if (pace_run(&po, &pr) != 0) {
        say(err, errlen, "preload: %s", pr.error);
        return -1;
    }
    if (pr.accepted != events) {
        say(err, errlen, "preload: %llu of %llu events accepted", (unsigned long long)pr.accepted,
            (unsigned long long)events);
        return -1;
    }
    return server_stop(s, err, errlen);
}

/* The plugin path: preload, then deliver to the responder. */
static int plugin_run(const options *o, const sink_shape *sh, responder *rs, run *r,
                      uint32_t nonce) {
    server s;
    char err[512] = "", url[64];
    int rc = -1;
    if (server_new(o, &s, err, sizeof err) ||
        preload(o, sh, &s, o->drain_events, nonce, err, sizeof err))
        goto out;
    snprintf(url, sizeof url, "http://127.0.0.1:%d", responder_port(rs));
    responder_reset(rs);
    if (write_config(o, sh, &s, url, NULL, 0, err, sizeof err) ||
        server_start(o, &s, err, sizeof err))
        goto out;
    double cpu0 = bench_cpu_s(s.pid);
    if (wait_count(&s, responder_count, rs, o->drain_events, err, sizeof err))
        goto out;
    double cpu1 = bench_cpu_s(s.pid);
    r->plugin_us = cpu0 >= 0 && cpu1 >= cpu0 ? (cpu1 - cpu0) * 1e6 / (double)o->drain_events : 0;
    r->rss_mib = bench_vmhwm_mib(s.pid);
    if (server_stop(&s, err, sizeof err))
        goto out;
    r->plugin_eps = responder_rate(rs);
    uint64_t got = responder_entries(rs);
    r->redelivered = got > o->drain_events ? got - o->drain_events : 0;
    if (responder_bad(rs)) {
        say(err, sizeof err, "the responder refused %llu request(s) as malformed",
            (unsigned long long)responder_bad(rs));
        goto out;
    }
    rc = 0;
out:
    if (rc) {
        say(r->error, sizeof r->error, "plugin path: %s", err);
        if (s.pid)
            server_stop(&s, err, sizeof err);
        fprintf(stderr, "bench-sinks: %s run failed: %s\n  last lines of %s:\n", sh->name, r->error,
                s.log);
        bench_log_tail(s.log, stderr, 8);
    }
    if (!o->keep)
        bench_tmpdir_remove(s.dir);
    return rc;
}

/* The bare loop, with the request the plugin path just sent. */
static int bare_once(const options *o, const sink_shape *sh, responder *rs, run *r) {
    const char *body, *target;
    size_t len;
    if (responder_captured(rs, sh->max_entries, &body, &len, &target)) {
        say(r->error, sizeof r->error, "bare loop: no request of %zu entries was captured",
            sh->max_entries);
        return -1;
    }
    /* The capture dies with the reset; the loop needs it after. */
    char *copy = malloc(len + 1);
    if (!copy) {
        say(r->error, sizeof r->error, "out of memory");
        return -1;
    }
    memcpy(copy, body, len + 1);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", responder_port(rs));
    responder_reset(rs);
    bare_opts bo = {.url = url,
                    .region = REGION,
                    .service = sh->service,
                    .key_id = FAKE_KEY_ID,
                    .secret = FAKE_SECRET,
                    .content_type = sh->content_type,
                    .amz_target = sh->amz_target,
                    .body = copy,
                    .body_len = len,
                    .entries = sh->max_entries,
                    .concurrency = o->concurrency,
                    .warmup_s = o->warmup_s,
                    .duration_s = o->duration_s};
    bare_result br;
    int rc = bare_run(&bo, &br);
    free(copy);
    if (rc) {
        say(r->error, sizeof r->error, "bare loop: %s", br.error);
        return -1;
    }
    r->bare_eps = br.events_per_s;
    r->bare_us = br.cpu_us;
    r->ratio = r->plugin_eps / r->bare_eps;
    return 0;
}

/* Open loop at `rate` through a fresh evbusd: latency from each request's
 * scheduled time to the responder. */
static int latency_run(const options *o, const sink_shape *sh, responder *rs, double rate, run *r,
                       uint32_t nonce) {
    server s;
    char err[512] = "", url[64];
    int rc = -1;
    snprintf(url, sizeof url, "http://127.0.0.1:%d", responder_port(rs));
    if (server_new(o, &s, err, sizeof err) ||
        write_config(o, sh, &s, url, NULL, 0, err, sizeof err) ||
        server_start(o, &s, err, sizeof err))
        goto out;
    responder_reset(rs);
    pace_opts po = {.endpoint = s.zmq,
                    .event_size = o->size,
                    .batch = o->rate_batch,
                    .window = 4096,
                    .rate = rate,
                    .warmup_s = o->warmup_s,
                    .duration_s = o->duration_s,
                    .nonce = nonce};
    pace_result pr;
    if (pace_run(&po, &pr) != 0) {
        say(err, sizeof err, "%s", pr.error);
        goto out;
    }
    if (wait_count(&s, responder_count, rs, pr.accepted, err, sizeof err))
        goto out;
    const dstats *st = responder_stats(rs);
    r->p50_ms = dstats_quantile_ms(st, 0.50);
    r->p99_ms = dstats_quantile_ms(st, 0.99);
    r->open_eps = (double)atomic_load(&st->measured) / o->duration_s;
    r->late_ms = pr.late_ms;
    double rss = bench_vmhwm_mib(s.pid);
    if (rss > r->rss_mib)
        r->rss_mib = rss;
    if (server_stop(&s, err, sizeof err))
        goto out;
    rc = 0;
out:
    if (rc) {
        say(r->error, sizeof r->error, "latency run: %s", err);
        if (s.pid)
            server_stop(&s, err, sizeof err);
        fprintf(stderr, "bench-sinks: %s run failed: %s\n  last lines of %s:\n", sh->name, r->error,
                s.log);
        bench_log_tail(s.log, stderr, 8);
    }
    if (!o->keep)
        bench_tmpdir_remove(s.dir);
    return rc;
}

/* The plugin path against moto_server: preload, then deliver, counting
 * deliveries through evbusd's /metrics (moto does not tell). */
static int moto_run(const options *opts, const sink_shape *sh, const moto_server *m, double *eps,
                    char *why, size_t whylen) {
    options mo = *opts;
    const options *o = &mo;
    mo.concurrency = opts->moto_concurrency;
    server s;
    char err[512] = "", resource[512];
    int rc = -1;
    if (server_new(o, &s, err, sizeof err) ||
        moto_create(m, sh->moto_create, "bench", resource, sizeof resource, err, sizeof err) ||
        preload(o, sh, &s, o->moto_events, (uint32_t)time(NULL), err, sizeof err))
        goto out;
    int mport = bench_free_port();
    if (write_config(o, sh, &s, m->endpoint, resource, mport, err, sizeof err) ||
        server_start(o, &s, err, sizeof err))
        goto out;
    if (moto_wait_delivered(mport, o->moto_events, &s.pid, eps, err, sizeof err))
        goto out;
    if (server_stop(&s, err, sizeof err))
        goto out;
    rc = 0;
out:
    if (rc) {
        say(why, whylen, "%s", err);
        if (s.pid)
            server_stop(&s, err, sizeof err);
        fprintf(stderr, "bench-sinks: %s against moto failed: %s\n  last lines of %s:\n", sh->name,
                why, s.log);
        bench_log_tail(s.log, stderr, 8);
    }
    if (!o->keep)
        bench_tmpdir_remove(s.dir);
    return rc;
}

static double median_of(const run *rs, unsigned runs, size_t offset, size_t *n) {
    double v[MAX_RUNS];
    size_t k = 0;
    for (unsigned i = 0; i < runs; i++)
        if (!rs[i].error[0])
            memcpy(&v[k++], (const char *)&rs[i] + offset, sizeof v[0]);
    *n = k;
    return bench_median(v, k);
}

static void print_header(const options *o) {
    char model[256], load[128];
    bench_cpu_model(model, sizeof model);
    bench_loadavg(load, sizeof load);
    printf("machine: %ld CPUs (%s), load average %s at start\n", sysconf(_SC_NPROCESSORS_ONLN),
           model, load);
    printf("         evbusd, the responder, the bare loop and the producer share these CPUs; "
           "on a\n         shared machine other work takes from both sides: compare the "
           "ratio, measured\n         in the same run, rather than events/s across runs\n");
    const char *fs = bench_fs_name(o->tmpdir);
    printf("storage: run directories in %s (%s)%s; a finished batch frees its place in\n"
           "         max_in_flight at once, and up to as many more wait for the commit (fsync)\n"
           "         of their results\n",
           o->tmpdir, fs, strcmp(fs, "tmpfs") == 0 ? " -- WARNING: fsync is free on tmpfs" : "");
    printf("events:  %zu B (id + source + detail type + detail); each sink's largest request "
           "(SQS:\n         10 entries); %u requests in flight (the target's max_in_flight and "
           "the bare\n         loop's); %u run(s) per sink, each figure the median\n",
           o->size, o->concurrency, o->runs);
    printf("plugin:  evbusd (%s, one delivery thread) delivers %llu preloaded\n"
           "         events to the responder; entries/s between its first and last request\n",
           o->evbusd, (unsigned long long)o->drain_events);
    printf("bare:    one thread, a libcurl multi, the same captured request body, "
           "CURLOPT_AWS_SIGV4,\n         HTTP/1.1 keep-alive, for %.1f s after %.1f s\n",
           o->duration_s, o->warmup_s);
    printf("latency: open loop through evbusd: publish requests of %zu events at fixed times, "
           "at half\n         the plugin path's rate%s; from each one's scheduled time to "
           "the responder\n",
           o->rate_batch, o->rate > 0 ? " (here: --rate)" : "");
    printf("RSS:     evbusd's peak resident set over the drain and latency runs\n");
    printf("us/ev:   CPU time per event: evbusd's, all threads, over the drain; the bare loop's "
           "thread\n         (neither counts the responder)\n\n");
    printf("sink           |  plugin ev/s |    bare ev/s | ratio  | goal 90%% | goal 150k | us/ev "
           "plugin "
           "  bare | rate ev/s    p50 ms   p99 ms | RSS MiB | redeliv\n");
    printf("---------------+--------------+--------------+--------+----------+-----------+---------"
           "----"
           "-------+-----------------------------+---------+--------\n");
    fflush(stdout);
}

static void print_row(const options *o, const sink_shape *sh, const run *rs) {
    size_t n, nl;
    char a[32], b[32], c[32];
    double plugin = median_of(rs, o->runs, offsetof(run, plugin_eps), &n);
    if (!n) {
        printf(
            "%-14s |       failed |            - |      - |        - |         - |      -      - "
            "|         -        -        - |       - |       -\n",
            sh->name);
        fflush(stdout);
        return;
    }
    double bare = median_of(rs, o->runs, offsetof(run, bare_eps), &n);
    double ratio = median_of(rs, o->runs, offsetof(run, ratio), &n);
    double rate = median_of(rs, o->runs, offsetof(run, open_eps), &nl);
    double p50 = median_of(rs, o->runs, offsetof(run, p50_ms), &nl);
    double p99 = median_of(rs, o->runs, offsetof(run, p99_ms), &nl);
    double rss = median_of(rs, o->runs, offsetof(run, rss_mib), &n);
    double pus = median_of(rs, o->runs, offsetof(run, plugin_us), &n);
    double bus = median_of(rs, o->runs, offsetof(run, bare_us), &n);
    uint64_t redeliv = 0;
    for (unsigned i = 0; i < o->runs; i++)
        redeliv += rs[i].redelivered;
    printf("%-14s | %12s | %12s | %5.1f%% | %-8s | %-9s | %12.2f %6.2f | %9s %9.2f %8.2f | %7.1f | "
           "%7llu\n",
           sh->name, bench_fmt_count(plugin, a, sizeof a), bench_fmt_count(bare, b, sizeof b),
           100 * ratio, ratio >= 0.9 ? "met" : "missed", plugin >= 150000 ? "met" : "missed", pus,
           bus, bench_fmt_count(rate, c, sizeof c), p50, p99, rss, (unsigned long long)redeliv);
    fflush(stdout);
}

int main(int argc, char **argv) {
    options o;
    memset(&o, 0, sizeof o);
    if (parse_options(argc, argv, &o))
        return 2;
    bench_catch_signals();
    /* evbusd inherits these: the plugins' credential chain finds them first,
     * and nothing on this machine is asked for others. */
    setenv("AWS_ACCESS_KEY_ID", FAKE_KEY_ID, 1);
    setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET, 1);
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_PROFILE");
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);

    responder *rs = NULL;
    char err[256];
    if (responder_start(&rs, err, sizeof err)) {
        fprintf(stderr, "evbus-bench-sinks: %s\n", err);
        return 1;
    }
    run *runs = calloc(MAX_RUNS, sizeof *runs);
    if (!runs) {
        fprintf(stderr, "evbus-bench-sinks: out of memory\n");
        return 1;
    }
    print_header(&o);
    int failures = 0;
    uint32_t nonce = (uint32_t)time(NULL) ^ (uint32_t)getpid() << 16;
    for (size_t k = 0; k < n_sink_shapes && !bench_interrupted; k++) {
        const sink_shape *sh = &sink_shapes[k];
        if (!o.sinks[k])
            continue;
        memset(runs, 0, MAX_RUNS * sizeof *runs);
        /* Plugin path and bare loop alternate, so that a change in the
         * machine's load hits both figures of a ratio alike. */
        for (unsigned i = 0; i < o.runs && !bench_interrupted; i++) {
            if (plugin_run(&o, sh, rs, &runs[i], nonce++) || bare_once(&o, sh, rs, &runs[i])) {
                failures++;
                continue;
            }
            if (o.verbose)
                fprintf(stderr, "bench-sinks: %s run %u: plugin %.0f ev/s, bare %.0f ev/s\n",
                        sh->name, i + 1, runs[i].plugin_eps, runs[i].bare_eps);
        }
        size_t n;
        double rate =
            o.rate > 0 ? o.rate : median_of(runs, o.runs, offsetof(run, plugin_eps), &n) / 2;
        for (unsigned i = 0; i < o.runs && !bench_interrupted && rate > 0; i++) {
            if (runs[i].error[0])
                continue;
            if (latency_run(&o, sh, rs, rate, &runs[i], nonce++)) {
                failures++;
                continue;
            }
            if (o.verbose)
                fprintf(stderr,
                        "bench-sinks: %s latency run %u at %.0f ev/s: p50 %.2f ms, p99 %.2f ms, "
                        "producer at most %.1f ms late\n",
                        sh->name, i + 1, rate, runs[i].p50_ms, runs[i].p99_ms, runs[i].late_ms);
        }
        if (!bench_interrupted)
            print_row(&o, sh, runs);
    }
    free(runs);
    responder_stop(&rs);

    if (o.moto && !bench_interrupted) {
        printf("\nagainst moto_server (signatures checked), %llu events, for the record:\n",
               (unsigned long long)o.moto_events);
        moto_server m;
        char why[512];
        if (moto_server_start(&m, o.tmpdir, why, sizeof why) != 0) {
            printf("  skipped: %s\n", why);
        } else {
            for (size_t k = 0; k < n_sink_shapes && !bench_interrupted; k++) {
                const sink_shape *sh = &sink_shapes[k];
                double eps = 0;
                if (!o.sinks[k])
                    continue;
                if (moto_run(&o, sh, &m, &eps, why, sizeof why)) {
                    printf("%-14s | failed: %s\n", sh->name, why);
                    failures++;
                } else if (eps == 0) {
                    /* A few large calls can all land between two polls of
                     * /metrics: no interval to divide by. */
                    printf("%-14s |            - ev/s (all delivered between two polls: raise "
                           "--moto-events)\n",
                           sh->name);
                } else {
                    char a[32];
                    printf("%-14s | %12s ev/s\n", sh->name, bench_fmt_count(eps, a, sizeof a));
                }
                fflush(stdout);
            }
            moto_server_stop(&m, o.keep);
        }
    }
    char load[128];
    bench_loadavg(load, sizeof load);
    printf("\nload average %s at the end.\n", load);
    if (bench_interrupted) {
        fprintf(stderr, "evbus-bench-sinks: interrupted; servers stopped\n");
        return 130;
    }
    if (failures) {
        fprintf(stderr, "evbus-bench-sinks: %d run(s) failed (see above)\n", failures);
        return 1;
    }
    return 0;
}
