/* Checks one published event against evbus's limits, which follow Amazon
 * EventBridge PutEvents so that whatever evbus accepts a sink can deliver. */
#ifndef EVBUS_VALIDATE_H
#define EVBUS_VALIDATE_H

#include <stddef.h>

#include "evbus.pb-c.h"

#define EVBUS_SOURCE_MAX      256
#define EVBUS_DETAIL_TYPE_MAX 128
#define EVBUS_RESOURCES_MAX   100
#define EVBUS_RESOURCE_MAX    2048
/* SQS FIFO message group ids are at most 128 characters; a longer key could
 * not be carried to an ordered sink. */
#define EVBUS_PARTITION_KEY_MAX 128
#define EVBUS_REGION_MAX        64
#define EVBUS_ATTRIBUTES_MAX    64
#define EVBUS_ATTRIBUTE_KEY_MAX 256

/* Returns 0 when the event is acceptable. Otherwise returns -1 and writes a
 * reason a person can act on into why (which field, what limit). */
int evbus__event_validate(const Evbus__V1__Event *ev, size_t max_event_size, char *why,
                          size_t whylen);

/* Returns 1 when s is an RFC 3339 timestamp (2026-11-23T17:44:20Z, with
 * optional fraction and numeric offset). */
int evbus__time_valid(const char *s);

#endif
