/* What bench/sinks needs to know about one AWS sink: how its calls look on
 * the wire (service, X-Amz-Target, content type), how many entries a call
 * carries, the target configuration evbusd gets, and how an endpoint that
 * answers instantly replies. Adding a sink is one row of sink_shapes[]
 * (shape.c) plus an answer function. */
#ifndef BENCH_SINKS_SHAPE_H
#define BENCH_SINKS_SHAPE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The answer being built by a shape's answer function, and where it reports
 * each entry it read. */
typedef struct shape_answer {
    char *data; /* the answer body; owned, grown by shape_answer_add */
    size_t len, cap;
    /* Called once per entry of the request with the entry's publish stamp
     * ({"t":<19 digits>,"m":<0|1>, unescaped), or NULL when it has none. */
    void (*on_entry)(void *arg, const char *stamp);
    void *arg;
} shape_answer;

/* Appends n bytes; 0 or -1 (memory). */
int shape_answer_add(shape_answer *a, const char *s, size_t n);

/* Finds the first publish stamp in body[0..len) -- the detail's
 * {"t":...,"m":...} as it appears inside a JSON string ({\"t\":...) -- and
 * writes it unescaped into out (32 bytes). 0, or -1 when there is none. */
int shape_find_stamp(const char *body, size_t len, char out[32]);

typedef struct sink_shape {
    const char *name;         /* the table's row: "sqs" */
    const char *plugin;       /* evbusd's plugin short name */
    const char *service;      /* SigV4 service name: "sqs" */
    const char *content_type; /* "application/x-amz-json-1.0" */
    const char *amz_target;   /* X-Amz-Target of the call: "AmazonSQS.SendMessageBatch" */
    size_t max_entries;       /* entries per call, and the target's batch_max_events */
    /* Writes the plugin's keys under the target's `config:` (6 spaces of
     * indent) for an endpoint at `endpoint`; `resource` is what moto_setup
     * made (a queue URL), or NULL against the instant responder. */
    void (*write_config)(FILE *f, const char *endpoint, const char *resource);
    /* Reads one request and writes the service's success answer into a:
     * every entry succeeded. Returns the number of entries, or -1 when the
     * body is not this call (answered 400). */
    int (*answer)(const char *body, size_t len, shape_answer *a);
    /* The tests/support/aws_tool.py command that creates the resource in
     * moto and prints it ("create-queue"; called as CMD EP REGION NAME). */
    const char *moto_create;
} sink_shape;

/* Every sink the benchmark knows, and how many. */
extern const sink_shape sink_shapes[];
extern const size_t n_sink_shapes;

/* The shape whose amz_target is `target`, or NULL. */
const sink_shape *shape_by_target(const char *target);

#endif
