/* A target's plugin settings against the keys the plugin declares: the check
 * evbusd runs before init, and the lookups behind the host's config_*
 * services. A target's settings in a region are its `config:` with that
 * region's keys (under the target's `regions:`) over them. Pure functions
 * over the loaded configuration and the plugin's descriptor. */
#ifndef EVBUS_PLUGIN_CONFIG_H
#define EVBUS_PLUGIN_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "evbus/plugin.h"

/* Checks target `index` (`t`, at `at` in the file) against plugin `p`: keys
 * of its config: and of each of its regions the plugin does not declare (the
 * message points at the key), values of the wrong type (at the value), and,
 * for each region it delivers to, required keys set neither in config: nor
 * in that region's keys (at the region's name, or at the target). Adds every
 * problem to `e`, each "file:line:col: key: what"; returns how many. */
unsigned evbus__plugin_config_check(evbus__cfg_errors *e, size_t index, evbus__cfg_pos at,
                                    const evbus__target_cfg *t, const evbus_plugin *p);

/* The text of key `key` of type `type` for target `t` in region `r` (one of
 * t->delivery_regions, or NULL for config: alone): the region's value, else
 * the target's config: value, else the key's default. *value belongs to the
 * configuration (or the plugin's descriptor). Returns EVBUS_OK; EVBUS_ENOENT
 * for a declared key that has no default and that the target leaves unset;
 * EVBUS_EINVAL for a key `p` does not declare, or declares with another type
 * (*value is then untouched). */
evbus_err evbus__plugin_config_value(const evbus_plugin *p, const evbus__target_cfg *t,
                                     const evbus__target_region *r, const char *key,
                                     evbus_config_type type, const char **value);

/* Parses the text of a value of `type` into *num (0 or 1 for BOOL, bytes for
 * SIZE, milliseconds for DURATION; untouched for STRING). 0 or -1. */
int evbus__plugin_config_parse(evbus_config_type type, const char *s, int64_t *num);

#endif
