/* evbus-bench-ingest --routers: evbus past one router, on this machine.
 *
 * 1. Throughput: the same producers publish to one evbusd, then spread their
 *    requests (EVBUS_ROUTER_SPREAD) over two evbusd, runs alternating, and
 *    the ratio of events/s is printed.
 * 2. Resume time: one `failover` producer publishes to two evbusd; the one
 *    it uses is killed (kill -9), later restarted on the same endpoint and
 *    data directory, `kills` times. The resume time of a kill is from the
 *    kill to the first ack, from the other router, of a request published
 *    after the kill (the producer had to notice the loss and go on, not
 *    just finish what it had sent). The requests in flight at the kill are
 *    timed too: from the kill to the last of their acks (they are resent to
 *    the other router with the same ids). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "evbus/evbus.h"
#include "host.h"
#include "proc.h"

typedef struct router {
    char dir[PATH_MAX - 64];
    char log[PATH_MAX];
    char endpoint[64];
    pid_t pid; /* 0 once reaped */
    int status;
} router;

/* Starts evbusd for r: the first time in a fresh directory on a free port,
 * afterwards (a restart) on the same endpoint and data. */
static int router_start(const bench_routers_opts *o, router *r, char *err, size_t errlen) {
    char cfg[PATH_MAX];
    if (!r->dir[0]) {
        if (bench_tmpdir_new(o->tmpdir, "router", r->dir, sizeof r->dir)) {
            snprintf(err, errlen, "cannot create a directory in %s: %s", o->tmpdir,
                     strerror(errno));
            return -1;
        }
        int port = bench_free_port();
        if (port < 0) {
            snprintf(err, errlen, "no free loopback port: %s", strerror(errno));
            return -1;
        }
        snprintf(r->endpoint, sizeof r->endpoint, "tcp://127.0.0.1:%d", port);
        snprintf(cfg, sizeof cfg, "%s/evbus.yaml", r->dir);
        FILE *f = fopen(cfg, "w");
        if (!f ||
            fprintf(f,
                    "region: bench\nlog_level: info\ningest:\n  listen:\n    - %s\n"
                    "storage:\n  data_dir: data\n  map_size: 8GiB\n",
                    r->endpoint) < 0 ||
            fclose(f) != 0) {
            snprintf(err, errlen, "%.400s: cannot write", cfg);
            return -1;
        }
        snprintf(r->log, sizeof r->log, "%s/server.log", r->dir);
    }
    snprintf(cfg, sizeof cfg, "%s/evbus.yaml", r->dir);
    char *argv[] = {(char *)o->evbusd, "--config", cfg, NULL};
    if (bench_spawn(argv, r->log, &r->pid, err, errlen))
        return -1;
    return bench_evbusd_wait_ready(r->endpoint, BENCH_SOURCE, &r->pid, &r->status, 15000, err,
                                   errlen);
}

/* Stops r with SIGTERM; -1 when it did not stop cleanly. Keeps its
 * directory unless `remove`. */
static int router_stop(const bench_routers_opts *o, router *r, int remove) {
    char err[256];
    int rc = 0;
    if (r->pid && bench_stop(r->pid, 15000, err, sizeof err) != 0) {
        fprintf(stderr, "%s: evbusd on %s did not stop cleanly: %s\n", bench_name, r->endpoint,
                err);
        rc = -1;
    }
    r->pid = 0;
    if (remove && r->dir[0] && !o->keep)
        bench_tmpdir_remove(r->dir);
    if (remove)
        r->dir[0] = '\0';
    return rc;
}

static void router_kill9(router *r) {
    if (!r->pid)
        return;
    kill(r->pid, SIGKILL);
    waitpid(r->pid, &r->status, 0);
    r->pid = 0;
}

/* ------------------------------------------------------------ throughput */

/* One load against n fresh routers (n = 1: one endpoint; 2: spread). */
static int load_on(const bench_routers_opts *o, unsigned producers, size_t n, uint32_t nonce,
                   bench_result *res) {
    router rs[2] = {{.dir = ""}, {.dir = ""}};
    const char *eps[2];
    char err[512] = "";
    int rc = -1;
    memset(res, 0, sizeof *res);
    for (size_t i = 0; i < n; i++) {
        if (router_start(o, &rs[i], err, sizeof err)) {
            snprintf(res->error, sizeof res->error, "evbusd: %s", err);
            goto out;
        }
        eps[i] = rs[i].endpoint;
    }
    bench_load ld = {.event_size = o->event_size,
                     .batch = o->batch,
                     .producers = producers,
                     .window = o->window,
                     .warmup_s = o->warmup_s,
                     .duration_s = o->duration_s,
                     .nonce = nonce,
                     .endpoint = n == 1 ? eps[0] : NULL,
                     .endpoints = n > 1 ? eps : NULL,
                     .n_endpoints = n > 1 ? n : 0};
    double cpu0 = 0;
    for (size_t i = 0; i < n; i++)
        cpu0 += bench_cpu_s(rs[i].pid);
    rc = bench_load_run(&ld, bench_evbus_producer, res);
    double cpu1 = 0;
    for (size_t i = 0; i < n; i++) {
        if (!bench_alive(rs[i].pid, &rs[i].status)) {
            rs[i].pid = 0;
            snprintf(res->error, sizeof res->error, "evbusd on %s ended during the run",
                     rs[i].endpoint);
            rc = -1;
        }
        cpu1 += bench_cpu_s(rs[i].pid);
    }
    if (rc == 0 && res->durable)
        res->cpu_us = (cpu1 - cpu0) * 1e6 / (double)res->durable;
out:
    for (size_t i = 0; i < n; i++)
        if (router_stop(o, &rs[i], 1) && rc == 0) {
            snprintf(res->error, sizeof res->error, "an evbusd did not stop cleanly");
            rc = -1;
        }
    if (rc)
        fprintf(stderr, "%s: %zu-router run failed: %s\n", bench_name, n, res->error);
    return rc;
}

static int throughput(const bench_routers_opts *o, unsigned producers, uint32_t *nonce) {
    bench_result one[BENCH_ROUTERS_MAX_RUNS], two[BENCH_ROUTERS_MAX_RUNS];
    double v1[BENCH_ROUTERS_MAX_RUNS], v2[BENCH_ROUTERS_MAX_RUNS], ratio[BENCH_ROUTERS_MAX_RUNS],
        p1[BENCH_ROUTERS_MAX_RUNS], p2[BENCH_ROUTERS_MAX_RUNS], c1[BENCH_ROUTERS_MAX_RUNS],
        c2[BENCH_ROUTERS_MAX_RUNS];
    size_t n = 0;
    int failures = 0;
    for (unsigned r = 0; r < o->runs && !bench_interrupted; r++) {
        int f = load_on(o, producers, 1, (*nonce)++, &one[r]) != 0;
        if (!bench_interrupted)
            f |= load_on(o, producers, 2, (*nonce)++, &two[r]) != 0;
        failures += f;
        if (f || bench_interrupted)
            continue;
        v1[n] = one[r].events_per_s;
        v2[n] = two[r].events_per_s;
        ratio[n] = v1[n] > 0 ? v2[n] / v1[n] : 0;
        p1[n] = one[r].p99_ms;
        p2[n] = two[r].p99_ms;
        c1[n] = one[r].cpu_us;
        c2[n] = two[r].cpu_us;
        if (o->verbose)
            fprintf(stderr, "%s: %u producers run %u: 1 router %.0f ev/s, 2 routers %.0f ev/s\n",
                    bench_name, producers, r + 1, v1[n], v2[n]);
        n++;
    }
    if (n) {
        char a[32], b[32];
        printf("%6zu %5zu %4u | %13s %6.1f %6.2f | %13s %6.1f %6.2f | %5.2fx\n", o->event_size,
               o->batch, producers, bench_fmt_count(bench_median(v1, n), a, sizeof a),
               bench_median(p1, n), bench_median(c1, n),
               bench_fmt_count(bench_median(v2, n), b, sizeof b), bench_median(p2, n),
               bench_median(c2, n), bench_median(ratio, n));
        fflush(stdout);
    }
    return failures;
}

/* ------------------------------------------------------------ resume time */

typedef struct resume_run resume_run;

/* One request in flight; n == 0: a free slot. */
typedef struct slot {
    resume_run *run;
    uint64_t t_submit;
    size_t n;
    int held; /* in flight when the router was killed */
} slot;

struct resume_run {
    evbus_client_t *c;
    const char *killed_ep;  /* the endpoint killed; NULL between kills */
    const char *restart_ep; /* waiting for an ack from it of a request sent after t_restart */
    uint64_t t_kill, t_restart;
    uint64_t resumed_at; /* first ack from another router of a request sent after t_kill */
    uint64_t held_done_at;
    unsigned held_left;
    int back; /* the restarted router acked a request sent after its restart */
    uint64_t acked, not_durable;
    char error[256];
};

static void on_resume_ack(void *arg, evbus_err err, const evbus_ack *acks, size_t n) {
    slot *s = arg;
    resume_run *run = s->run;
    uint64_t t = bench_now_ns();
    const char *from = evbus_client_ack_router(run->c);
    if (err != EVBUS_OK && !run->error[0])
        snprintf(run->error, sizeof run->error, "a request failed: %s", evbus_strerror(err));
    for (size_t i = 0; err == EVBUS_OK && i < n; i++) {
        if (acks[i].status == EVBUS_ACK_ACCEPTED || acks[i].status == EVBUS_ACK_DUPLICATE)
            run->acked++;
        else
            run->not_durable++;
    }
    if (run->killed_ep && strcmp(from, run->killed_ep) != 0) {
        if (!run->resumed_at && s->t_submit >= run->t_kill)
            run->resumed_at = t;
        if (s->held && --run->held_left == 0)
            run->held_done_at = t;
    }
    if (run->restart_ep && s->t_submit >= run->t_restart && strcmp(from, run->restart_ep) == 0)
        run->back = 1;
    s->n = 0;
    s->held = 0;
}

typedef struct publisher {
    resume_run *run;
    slot *slots;
    unsigned window;
    evbus_event *evs;
    size_t batch;
    char *ids;
    bench_producer ids_state; /* only its id generator is used */
} publisher;

/* Keeps the window full and delivers acks for up to `ms`, or until *until
 * becomes non-zero. */
static int pump(publisher *p, int ms, const int *until) {
    uint64_t end = bench_now_ns() + (uint64_t)ms * 1000000u;
    while (bench_now_ns() < end && !(until && *until) && !bench_interrupted && !p->run->error[0]) {
        slot *free_slot = NULL;
        for (unsigned i = 0; i < p->window && !free_slot; i++)
            if (p->slots[i].n == 0)
                free_slot = &p->slots[i];
        if (free_slot) {
            for (size_t i = 0; i < p->batch; i++)
                bench_id_next(&p->ids_state, (char *)p->evs[i].id);
            free_slot->n = p->batch;
            free_slot->t_submit = bench_now_ns();
            evbus_err rc =
                evbus_publish_async(p->run->c, p->evs, p->batch, on_resume_ack, free_slot);
            if (rc) {
                snprintf(p->run->error, sizeof p->run->error, "publish: %s", evbus_strerror(rc));
                return -1;
            }
            evbus_client_poll(p->run->c, 0);
        } else {
            evbus_client_poll(p->run->c, 5);
        }
    }
    return p->run->error[0] ? -1 : 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest rank on a sorted array. */
static double quantile(const double *v, size_t n, double q) {
    size_t k = (size_t)ceil(q * (double)n);
    return v[k ? k - 1 : 0];
}

static int resume_times(const bench_routers_opts *o, uint32_t nonce) {
    router rs[2] = {{.dir = ""}, {.dir = ""}};
    char err[512] = "";
    int failures = 0;
    resume_run run = {0};
    publisher p = {.run = &run, .window = o->resume_window, .batch = o->batch};
    double resume_ms[BENCH_ROUTERS_MAX_KILLS], held_ms[BENCH_ROUTERS_MAX_KILLS];
    size_t done = 0;
    size_t dlen = bench_detail_len(o->event_size);
    char *detail = malloc(dlen + 1);
    p.slots = calloc(p.window, sizeof *p.slots);
    p.evs = calloc(p.batch, sizeof *p.evs);
    p.ids = calloc(p.batch, BENCH_ID_LEN + 1);
    p.ids_state.rng = ((uint64_t)nonce << 32) ^ 0x5bd1e995u;
    if (!detail || !p.slots || !p.evs || !p.ids) {
        fprintf(stderr, "%s: out of memory\n", bench_name);
        failures = 1;
        goto out;
    }
    bench_detail_fill(detail, dlen);
    for (size_t i = 0; i < p.batch; i++)
        p.evs[i] = (evbus_event){.id = p.ids + i * (BENCH_ID_LEN + 1),
                                 .source = BENCH_SOURCE,
                                 .detail_type = BENCH_DETAIL_TYPE,
                                 .detail = detail};
    for (unsigned i = 0; i < p.window; i++)
        p.slots[i].run = &run;
    for (int i = 0; i < 2; i++)
        if (router_start(o, &rs[i], err, sizeof err)) {
            fprintf(stderr, "%s: evbusd: %s\n", bench_name, err);
            failures = 1;
            goto out;
        }
    const char *eps[2] = {rs[0].endpoint, rs[1].endpoint};
    evbus_client_opts co;
    evbus_client_opts_init(&co);
    co.endpoints = eps;
    co.n_endpoints = 2;
    co.policy = EVBUS_ROUTER_FAILOVER;
    co.max_in_flight = p.window;
    co.resend_ms = o->resend_ms;
    co.timeout_ms = 60000;
    evbus_err rc = evbus_client_new(NULL, &co, &run.c);
    if (rc) {
        fprintf(stderr, "%s: client: %s\n", bench_name, evbus_strerror(rc));
        failures = 1;
        goto out;
    }
    run.restart_ep = rs[0].endpoint;
    run.t_restart = bench_now_ns();
    for (unsigned k = 0; k < o->kills && !bench_interrupted; k++) {
        /* On the first router again, and steady there for a while. */
        if (pump(&p, 30000, &run.back) || !run.back) {
            fprintf(stderr, "%s: kill %u: the producer did not return to %s within 30 s%s%s\n",
                    bench_name, k + 1, rs[0].endpoint, run.error[0] ? ": " : "", run.error);
            failures++;
            break;
        }
        run.restart_ep = NULL;
        if (pump(&p, 300, NULL))
            break;
        run.resumed_at = run.held_done_at = 0;
        run.held_left = 0;
        unsigned held = 0;
        for (unsigned i = 0; i < p.window; i++)
            if (p.slots[i].n) {
                p.slots[i].held = 1;
                held++;
            }
        run.held_left = held;
        run.killed_ep = rs[0].endpoint;
        run.t_kill = bench_now_ns();
        router_kill9(&rs[0]);
        int resumed_and_held = 0;
        uint64_t deadline = bench_now_ns() + 30000000000u;
        while (!resumed_and_held && bench_now_ns() < deadline && !bench_interrupted) {
            if (pump(&p, 10, NULL))
                break;
            resumed_and_held = run.resumed_at && run.held_left == 0;
        }
        if (!resumed_and_held) {
            fprintf(stderr, "%s: kill %u: no resume within 30 s%s%s\n", bench_name, k + 1,
                    run.error[0] ? ": " : "", run.error);
            failures++;
            break;
        }
        resume_ms[done] = (double)(run.resumed_at - run.t_kill) / 1e6;
        held_ms[done] = run.held_done_at ? (double)(run.held_done_at - run.t_kill) / 1e6 : 0;
        printf("  kill %2u: resumed %7.1f ms after kill -9; the %u requests in flight acked by "
               "the other router %7.1f ms after\n",
               k + 1, resume_ms[done], held, held_ms[done]);
        fflush(stdout);
        done++;
        run.killed_ep = NULL;
        if (router_start(o, &rs[0], err, sizeof err)) {
            fprintf(stderr, "%s: restarting evbusd: %s\n", bench_name, err);
            failures++;
            break;
        }
        run.back = 0;
        run.restart_ep = rs[0].endpoint;
        run.t_restart = bench_now_ns();
    }
    if (done) {
        qsort(resume_ms, done, sizeof *resume_ms, cmp_double);
        qsort(held_ms, done, sizeof *held_ms, cmp_double);
        printf("\nresume:  p50 %.1f ms, p99 %.1f ms, max %.1f ms over %zu kill(s) (resend_ms %d)\n",
               quantile(resume_ms, done, 0.5), quantile(resume_ms, done, 0.99), resume_ms[done - 1],
               done, o->resend_ms);
        printf("held:    p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", quantile(held_ms, done, 0.5),
               quantile(held_ms, done, 0.99), held_ms[done - 1]);
        printf("acked:   %llu events durable, %llu not\n", (unsigned long long)run.acked,
               (unsigned long long)run.not_durable);
    }
    if (run.c) {
        evbus_client_flush(run.c, 20000);
        evbus_client_destroy(&run.c);
    }
out:
    for (int i = 0; i < 2; i++)
        failures += router_stop(o, &rs[i], 1) != 0;
    free(detail);
    free(p.slots);
    free(p.evs);
    free(p.ids);
    return failures;
}

int bench_routers_run(const bench_routers_opts *o) {
    char load[128];
    bench_loadavg(load, sizeof load);
    printf("machine: %ld CPUs, load average %s at start; every evbusd and the producers share "
           "them\n",
           sysconf(_SC_NPROCESSORS_ONLN), load);
    printf("routers: evbusd on tcp://127.0.0.1, each with its own data directory in %s (%s)\n",
           o->tmpdir, bench_fs_name(o->tmpdir));
    printf("load:    window %u requests in flight per producer; %u run(s) of %.1f s after %.1f s "
           "warm-up,\n         1 router and 2 routers alternating; figures are medians of the "
           "runs\n",
           o->window, o->runs, o->duration_s, o->warmup_s);
    printf("2 routers: each producer's client spreads its requests over both "
           "(EVBUS_ROUTER_SPREAD)\n");
    printf("us/ev:   CPU time of all the evbusd (user + system) per durable event\n\n");
    printf("  size batch prod |  1 router ev/s    p99  us/ev | 2 routers ev/s    p99  us/ev |   "
           "2/1\n");
    printf("------------------+-----------------------------+-----------------------------+-----"
           "--\n");
    fflush(stdout);
    uint32_t nonce = (uint32_t)time(NULL) ^ (uint32_t)getpid() << 16;
    int failures = 0;
    for (size_t i = 0; i < o->n_producers && !bench_interrupted; i++)
        failures += throughput(o, o->producers[i], &nonce);

    printf("\nfailover: one producer (window %u x %zu events) publishes to routers A, B under "
           "EVBUS_ROUTER_FAILOVER;\n          A is killed (kill -9) while in use, restarted, "
           "and the producer goes back to it, %u times.\n",
           o->resume_window, o->batch, o->kills);
    printf("          resumed: from the kill to the first ack from B of a request published "
           "after the kill.\n          in flight: from the kill to the last ack of the requests "
           "A held (resent to B, same ids).\n");
    fflush(stdout);
    if (!bench_interrupted)
        failures += resume_times(o, nonce);

    bench_loadavg(load, sizeof load);
    printf("\nload average %s at the end.\n", load);
    if (bench_interrupted) {
        fprintf(stderr, "%s: interrupted; servers stopped\n", bench_name);
        return 130;
    }
    if (failures) {
        fprintf(stderr, "%s: %d run(s) failed (see above)\n", bench_name, failures);
        return 1;
    }
    return 0;
}
