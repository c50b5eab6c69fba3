/* What the benchmarks say about where they run: the build tree's evbusd, the
 * machine, and numbers formatted for a table. */
#ifndef BENCH_HOST_H
#define BENCH_HOST_H

#include <stddef.h>

/* The daemon of the build tree a benchmark belongs to: $EVBUS_BIN_DIR/evbusd
 * when that exists, else <build>/core/evbusd for a benchmark at
 * <build>/bench/NAME/PROGRAM. 0 with out set, or -1. */
int bench_find_evbusd(char *out, size_t len);

/* v rounded and written with thousands separators ("1,234,567"); returns buf. */
const char *bench_fmt_count(double v, char *buf, size_t len);

/* The CPU's model name ("unknown CPU" when /proc does not say). */
void bench_cpu_model(char *out, size_t len);

/* The 1-minute load average as /proc/loadavg writes it, or "?". */
void bench_loadavg(char *out, size_t len);

/* The file system dir is on: "ext4", "tmpfs", "xfs", "btrfs", "overlayfs",
 * "other", or "?" when it cannot be told. A constant string. */
const char *bench_fs_name(const char *dir);

#endif
