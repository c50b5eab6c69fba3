/* Fuzz target: two independent JSON validators must agree. The ingest check
 * (common/json_check.c) and the matcher's scanner (match/json_scan.c) were
 * written separately; any input one accepts and the other refuses is a bug in
 * one of them. Inputs nested deeper than both limits are left out. */
#include <stdint.h>
#include <stdlib.h>

#include "common/json_check.h"
#include "match.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t depth = 0, max = 0;
    for (size_t i = 0; i < size; i++) {
        if (data[i] == '{' || data[i] == '[')
            max = ++depth > max ? depth : max;
        else if ((data[i] == '}' || data[i] == ']') && depth)
            depth--;
    }
    if (max >= 100)
        return 0;
    size_t i = 0;
    while (i < size && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r'))
        i++;
    int is_object = i < size && data[i] == '{';
    const char *why;
    size_t off;
    int ours = evbus__json_check_object((const char *)data, size, &why, &off) == 0;
    int theirs = evbus__json_validate((const char *)data, size, NULL, NULL) == EVBUS_OK;
    if (ours != (theirs && is_object))
        abort();
    return 0;
}
