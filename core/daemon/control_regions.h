/* `evbus region status|on|off|fence|unfence|failover|failback` on the
 * control socket (control.c hands these commands here):
 *
 *   {"cmd":"region-on"|"region-off","region":"NAME","force":BOOL}
 *   {"cmd":"region-fence"|"region-unfence"|"region-failover"|"region-failback",
 *    "target":"NAME"}      (without target: every target with regions:)
 *
 * Routing controls obey routing_controls.at_least_on (the assertion rule)
 * and routing_controls.wait_period (the gating rule) unless forced;
 * application states move active|failover -> fenced -> active|failover
 * (unfence returns where fencing came from; failover and failback need
 * fenced first). A refusal says which rule and why. Accepted changes go to
 * the writer as EVBUS__STATE results and take effect once durable; each
 * carries its audit event (source evbus.region), committed with it. */
#ifndef EVBUS_CONTROL_REGIONS_H
#define EVBUS_CONTROL_REGIONS_H

#include <jansson.h>
#include <stdbool.h>

#include "config.h"
#include "dispatch.h"
#include "store.h"

typedef struct evbus__control_regions evbus__control_regions;

/* Loads the current controls and states from the store. `results` is the
 * control thread's PUSH socket to the writer. NULL when out of memory. */
evbus__control_regions *evbus__control_regions_new(const evbus__config *cfg, evbus__store *store,
                                                   evbus__dispatch *dispatch, void *results);

/* Frees; NULLs *r; accepts NULL. */
void evbus__control_regions_destroy(evbus__control_regions **r);

/* Whether `cmd` is a region command that changes state. */
bool evbus__control_regions_changes_state(const char *cmd);

/* Answers a region command (caller owns the answer), or NULL when `cmd` is
 * not one. `who` is the asker's User-Id (owner, operator:NAME, local; NULL
 * when unknown), named with the request's "reason" in the audit event of
 * each change (audit.h). Call only from the control thread. */
json_t *evbus__control_regions_handle(evbus__control_regions *r, const char *cmd, json_t *req,
                                      const char *who);

/* The "regions" array of the status: per region its routing control,
 * health and recent checks. Caller owns it. */
json_t *evbus__control_regions_status(evbus__control_regions *r);

#endif
