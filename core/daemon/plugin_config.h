/* A target's plugin settings (its `config:` mapping) against the keys the
 * plugin declares: the check evbusd runs before init, and the lookups behind
 * the host's config_* services. Pure functions over the loaded configuration
 * and the plugin's descriptor. */
#ifndef EVBUS_PLUGIN_CONFIG_H
#define EVBUS_PLUGIN_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "evbus/plugin.h"

/* Checks target `index` (`t`, at line `line` of the file `path`) against
 * plugin `p`: unknown keys (the message points at the key), values of the
 * wrong type (at the value), required keys left out (at the target).
 * Returns 0, or -1 with err saying file, line, column, key and what to do. */
int evbus__plugin_config_check(const char *path, size_t index, unsigned line,
                               const evbus__target_cfg *t, const evbus_plugin *p, char *err,
                               size_t errlen);

/* The text of key `key` of type `type` for target `t`: the target's value,
 * else the key's default. *value belongs to the configuration (or the
 * plugin's descriptor). Returns EVBUS_OK; EVBUS_ENOENT for a declared key
 * that has no default and that the target leaves unset; EVBUS_EINVAL for a
 * key `p` does not declare, or declares with another type (*value is then
 * untouched). */
evbus_err evbus__plugin_config_value(const evbus_plugin *p, const evbus__target_cfg *t,
                                     const char *key, evbus_config_type type, const char **value);

/* Parses the text of a value of `type` into *num (0 or 1 for BOOL, bytes for
 * SIZE, milliseconds for DURATION; untouched for STRING). 0 or -1. */
int evbus__plugin_config_parse(evbus_config_type type, const char *s, int64_t *num);

#endif
