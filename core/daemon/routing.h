/* Routing: the configuration's rules compiled into one matcher, and the
 * mapping from matched rules to target indices. Built once at start-up;
 * immutable afterwards, so several threads may route at once, each with its
 * own evbus__route_scratch. */
#ifndef EVBUS_ROUTING_H
#define EVBUS_ROUTING_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "evbus.pb-c.h"

typedef struct evbus__router evbus__router;
typedef struct evbus__route_scratch evbus__route_scratch;

/* Compiles the enabled rules of `cfg`. A pattern EventBridge would refuse is
 * an EVBUS_ECONFIG error naming the file, the rule's line, the rule, the path
 * in the pattern and why. The caller owns *out (evbus__router_destroy()). */
evbus_err evbus__router_new(const evbus__config *cfg, evbus__router **out, char *err,
                            size_t errlen);
void evbus__router_destroy(evbus__router **r);

/* Per-thread working memory; must not outlive its router. */
evbus_err evbus__route_scratch_new(const evbus__router *r, evbus__route_scratch **out);
void evbus__route_scratch_destroy(evbus__route_scratch **s);

/* The targets an event goes to: every target of every enabled rule that
 * matches it, each once, in target order; the catch-all target when no rule
 * matches (if one is configured). Writes up to `max` target indices into
 * `targets` and their number into *n. *matched is set to whether any rule
 * matched. Returns EVBUS_OK, or EVBUS_EPROTO when the detail is not JSON
 * the matcher can read (*n is then 0). */
evbus_err evbus__route(const evbus__router *r, evbus__route_scratch *s, const Evbus__V1__Event *ev,
                       uint32_t *targets, size_t max, size_t *n, int *matched);

/* Number of targets (the bound for `max` above). */
size_t evbus__router_target_count(const evbus__router *r);

#endif
