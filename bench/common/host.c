#include "host.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>

#define TMPFS_MAGIC 0x01021994

int bench_find_evbusd(char *out, size_t len) {
    const char *bin_dir = getenv("EVBUS_BIN_DIR");
    if (bin_dir && *bin_dir) {
        snprintf(out, len, "%s/evbusd", bin_dir);
        if (access(out, X_OK) == 0)
            return 0;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    snprintf(out, len, "%.*s/../../core/evbusd", (int)(len > 32 ? len - 32 : 0), self);
    return access(out, X_OK);
}

const char *bench_fmt_count(double v, char *buf, size_t len) {
    unsigned long long n = (unsigned long long)llround(v);
    char digits[32];
    int nd = snprintf(digits, sizeof digits, "%llu", n);
    size_t at = 0;
    for (int i = 0; i < nd && at + 2 < len; i++) {
        if (i && (nd - i) % 3 == 0)
            buf[at++] = ',';
        buf[at++] = digits[i];
    }
    buf[at] = '\0';
    return buf;
}

void bench_cpu_model(char *out, size_t len) {
    char line[512];
    snprintf(out, len, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon) {
            snprintf(out, len, "%s", colon + 2);
            out[strcspn(out, "\n")] = '\0';
            break;
        }
    }
    if (f)
        fclose(f);
}

void bench_loadavg(char *out, size_t len) {
    snprintf(out, len, "?");
    FILE *f = fopen("/proc/loadavg", "r");
    if (f && fgets(out, (int)len, f))
        out[strcspn(out, " ")] = '\0';
    if (f)
        fclose(f);
}

const char *bench_fs_name(const char *dir) {
    struct statfs sf;
    if (statfs(dir, &sf) != 0)
        return "?";
    return sf.f_type == 0xEF53        ? "ext4"
           : sf.f_type == TMPFS_MAGIC ? "tmpfs"
           : sf.f_type == 0x58465342  ? "xfs"
           : sf.f_type == 0x9123683E  ? "btrfs"
           : sf.f_type == 0x794c7630  ? "overlayfs"
                                      : "other";
}
