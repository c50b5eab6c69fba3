/* Finding a plugin by short name: a target's `plugin: sqs` names
 * evbus_sink_sqs.so in the configuration's plugin_dir, then in the install
 * directory lib/evbus/plugins next to the running binary's bin/ (which is
 * also where a build tree puts them), then in the configured install
 * prefix. Anything that is not a short name is a path. */
#ifndef EVBUS_PLUGIN_FIND_H
#define EVBUS_PLUGIN_FIND_H

#include <stdbool.h>
#include <stddef.h>

#include "evbus/error.h"

/* True when `s` is a short name ([a-z0-9_-]+), not a path. */
bool evbus__plugin_is_short_name(const char *s);

/* Finds the shared object of plugin `name`, looking in `plugin_dir` first
 * (may be NULL). On success *out is a malloc'd absolute path the caller
 * frees. EVBUS_ECONFIG with err listing the places looked in when there is
 * none; EVBUS_ENOMEM. */
evbus_err evbus__plugin_find(const char *name, const char *plugin_dir, char **out, char *err,
                             size_t errlen);

/* The same for another kind of plugin: `prefix` is the file name's
 * ("evbus_selector_" for selectors: `selector: region-health` names
 * evbus_selector_region-health.so). */
evbus_err evbus__plugin_find_kind(const char *name, const char *prefix, const char *plugin_dir,
                                  char **out, char *err, size_t errlen);

#endif
