/* What the parts of evbus-bench-failover share: the open-loop producer
 * (producer.c), the scenario it runs under (main.c) and the figures drawn
 * from both and from the sink's record (report.c). Times are milliseconds
 * since the run's clock started (fo_record.t0_ns), on CLOCK_MONOTONIC. */
#ifndef BENCH_FAILOVER_H
#define BENCH_FAILOVER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "record.h"

/* The producer: events at a fixed rate, whatever evbusd does (open loop):
 * request k is due at t0 + k * batch / rate; a request that cannot be sent
 * on time (the window is full) goes as soon as it can, and counts late. */
typedef struct fo_producer {
    /* Set by the caller. */
    const char *endpoint;
    double rate;       /* events per second */
    size_t batch;      /* events per publish request */
    size_t event_size; /* bytes of id + source + detail type + detail */
    unsigned window;   /* requests in flight at most */
    uint32_t nonce;    /* ids are fo-NONCE-N */
    uint64_t t0_ns;    /* when the schedule starts */
    int64_t end_ms;    /* when it ends */
    /* Filled by the producer thread; read once it has been joined. */
    uint8_t *acked;     /* [FO_MAX_EVENTS]: 1 once event N was acked durable */
    uint32_t *sent_ms;  /* [FO_MAX_MS]: events handed to the client */
    uint32_t *acked_ms; /* [FO_MAX_MS]: events acked ACCEPTED or DUPLICATE */
    uint64_t sent, acked_n, not_stored;
    uint64_t late; /* requests sent more than 1 ms after they were due */
    double max_late_ms;
    char error[256];
} fo_producer;

/* Allocates the producer's arrays. 0 or -1 (out of memory). */
int fo_producer_init(fo_producer *p);
void fo_producer_free(fo_producer *p);
/* The thread: runs the schedule, then waits for the last acks. */
void *fo_producer_main(void *p);

/* What the scenario did, and when. */
enum fo_mark_kind {
    FO_OUTAGE,       /* the primary's endpoint fails, its health check with it */
    FO_RECOVER,      /* both come back */
    FO_FLIP,         /* an outage and, at once, `evbus region off PRIMARY` */
    FO_FLIP_RECOVER, /* both come back, and `evbus region on PRIMARY` */
};

typedef struct fo_mark {
    enum fo_mark_kind kind;
    int64_t at_ms;  /* when it was done */
    double cli_ms;  /* FO_FLIP*: how long the evbus command took; else 0 */
    int cli_status; /* its exit status */
} fo_mark;

#define FO_MAX_MARKS 8

/* One run: the settings the figures are judged by, and what happened. */
typedef struct fo_run {
    double rate;
    size_t batch, event_size;
    int64_t interval_ms, failback_hold_ms;
    unsigned failure_threshold, recovery_threshold;
    const char *regions[FO_REGIONS]; /* primary, secondary */
    int64_t end_ms;                  /* the producer's last send */
    int64_t drained_ms;              /* when every acked event had arrived; -1: never */
    fo_mark marks[FO_MAX_MARKS];
    size_t n_marks;
    const fo_producer *prod;
    const fo_record *rec;
} fo_run;

/* Prints the per-second timeline, the recovery figures against the goals,
 * and the loss and redelivery check. Returns the number of acked events that
 * never arrived (0 is the only good answer). */
uint64_t fo_report(const fo_run *run, const char *loadavg_start, const char *loadavg_end);

/* Writes DIR/timeline.dat (100 ms steps: time, offered/s, accepted/s,
 * delivered/s per region, refused/s, pending) and DIR/marks.gp (gnuplot commands) for
 * bench/failover/plot.gp. 0, or -1 with err filled. */
int fo_write_data(const fo_run *run, const char *dir, char *err, size_t errlen);

/* Acked events that no region has received, up to event `limit`. */
uint64_t fo_count_lost(const fo_producer *p, const fo_record *rec, uint64_t limit);

#endif
