/* Fuzz target: a configuration file. Whatever the bytes, loading must end
 * in a valid configuration or an error that names the file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int fd = memfd_create("evbus.yaml", 0);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    evbus__config cfg;
    char err[4096];
    evbus__config_defaults(&cfg);
    evbus_err rc = evbus__config_load(&cfg, path, err, sizeof err);
    if (rc != EVBUS_OK && !strstr(err, path))
        abort(); /* every error names the file */
    evbus__config_free(&cfg);
    close(fd);
    return 0;
}
