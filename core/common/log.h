/* Logging for the daemon and its tools: one line per message on stderr,
 * "2026-11-23T17:44:20.123Z info [component] message". The level is checked
 * before anything is formatted, so a disabled debug line costs one compare. */
#ifndef EVBUS_LOG_H
#define EVBUS_LOG_H

#include <stdarg.h>

typedef enum evbus__log_level {
    EVBUS_LOG_ERROR = 0,
    EVBUS_LOG_WARN = 1,
    EVBUS_LOG_INFO = 2,
    EVBUS_LOG_DEBUG = 3,
} evbus__log_level;

extern evbus__log_level evbus__log_threshold;

/* Parses "error", "warn", "info" or "debug"; returns -1 for anything else. */
int evbus__log_level_parse(const char *name);

void evbus__log_write(evbus__log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void evbus__log_vwrite(evbus__log_level level, const char *component, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#define evbus__log(level, component, ...)                                                          \
    do {                                                                                           \
        if ((level) <= evbus__log_threshold)                                                       \
            evbus__log_write((level), (component), __VA_ARGS__);                                   \
    } while (0)

#define EVBUS_LOG_E(component, ...) evbus__log(EVBUS_LOG_ERROR, component, __VA_ARGS__)
#define EVBUS_LOG_W(component, ...) evbus__log(EVBUS_LOG_WARN, component, __VA_ARGS__)
#define EVBUS_LOG_I(component, ...) evbus__log(EVBUS_LOG_INFO, component, __VA_ARGS__)
#define EVBUS_LOG_D(component, ...) evbus__log(EVBUS_LOG_DEBUG, component, __VA_ARGS__)

#endif
