#include "log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

evbus__log_level evbus__log_threshold = EVBUS_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int evbus__log_level_parse(const char *name) {
    for (int i = 0; i < (int)(sizeof level_names / sizeof level_names[0]); i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

void evbus__log_vwrite(evbus__log_level level, const char *component, const char *fmt, va_list ap) {
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s [%s] ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, level_names[level], component);
    if (n < 0 || (size_t)n >= sizeof line)
        n = 0;
    int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    /* One fwrite per line keeps lines from different threads whole. */
    fwrite(line, 1, len, stderr);
}

void evbus__log_write(evbus__log_level level, const char *component, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    evbus__log_vwrite(level, component, fmt, ap);
    va_end(ap);
}
