/**
 * @file fuzz_json.c
 * @brief Fuzz target: the strict JSON scanner.
 *
 * jansson is the oracle: text jansson accepts must be accepted (unless it
 * nests deeper than our limit), and text we accept must be text jansson
 * accepts, except for numbers too large for jansson's integers and doubles
 * (JSON puts no limit on them). The same text is then matched as an event,
 * where the walk that descends into named fields must agree with the
 * validator that skips them.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "match.h"

static evbus__matcher *m;
static evbus__match_scratch *s;

static const char *const rules[] = {
    "{\"source\":[\"a\",{\"prefix\":\"b\"}],\"detail\":{\"x\":[{\"exists\":true}]}}",
    "{\"detail\":{\"a\":{\"b\":[{\"numeric\":[\">\",0]}]}}}",
    "{\"a\":[{\"equals-ignore-case\":\"\\u00c9\"}],\"b\":[{\"wildcard\":\"*x*\"}]}",
    "{\"c\":[{\"anything-but\":{\"suffix\":\"z\"}}],\"d\":[null,true,1.5]}",
    "{\"e\":[{\"cidr\":\"::/0\"}],\"f\":[{\"exists\":false}]}",
    "{\"\":[\"\"],\"g\":{\"\":[{\"suffix\":{\"equals-ignore-case\":\"Q\"}}]}}",
};

static void nop(void *arg, uint32_t rule) {
    (void)arg;
    (void)rule;
}

static int depth_of(const uint8_t *d, size_t n) {
    int depth = 0, max = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        if (in_str) {
            if (d[i] == '\\')
                i++;
            else if (d[i] == '"')
                in_str = false;
        } else if (d[i] == '"') {
            in_str = true;
        } else if (d[i] == '[' || d[i] == '{') {
            if (++depth > max)
                max = depth;
        } else if (d[i] == ']' || d[i] == '}') {
            depth--;
        }
    }
    return max;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!m) {
        evbus__match_rule r[6];
        char err[256];
        for (size_t i = 0; i < 6; i++)
            r[i] = (evbus__match_rule){"r", rules[i]};
        if (evbus__matcher_compile(r, 6, &m, err, sizeof err) != EVBUS_OK ||
            evbus__match_scratch_new(m, &s) != EVBUS_OK)
            abort();
    }
    const char *why = NULL;
    size_t off = 0;
    evbus_err ours = evbus__json_validate((const char *)data, size, &why, &off);
    json_error_t je;
    json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    /* jansson stops reading at a NUL byte outside strings ("2\0" passes):
     * only text without NULs can show that we refused valid JSON. */
    if (j && ours != EVBUS_OK && depth_of(data, size) < EVBUS_MATCH_DEPTH_MAX &&
        !memchr(data, 0, size))
        abort(); /* we refused valid JSON */
    if (!j && ours == EVBUS_OK && !strstr(je.text, "too big") && !strstr(je.text, "overflow") &&
        !strstr(je.text, "maximum parsing depth"))
        abort(); /* we accepted invalid JSON */
    if (ours != EVBUS_OK && (!why || off > size))
        abort();
    json_decref(j);

    /* As an event: the walk must agree with the validator on objects. */
    evbus_err rc = evbus__matcher_match_json(m, s, (const char *)data, size, nop, NULL);
    bool object = false;
    for (size_t i = 0; i < size; i++) {
        if (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r')
            continue;
        object = data[i] == '{';
        break;
    }
    if (object && (rc == EVBUS_OK) != (ours == EVBUS_OK))
        abort();
    evbus__match_event ev = {NULL, NULL, "a", NULL, NULL, NULL, NULL, NULL, 0, (const char *)data,
                             size, false};
    rc = evbus__matcher_match(m, s, &ev, nop, NULL);
    if ((rc == EVBUS_OK) != (ours == EVBUS_OK))
        abort();
    /* Vouched for wrongly: any answer, but nothing read outside the text. */
    ev.detail_checked = true;
    evbus__matcher_match(m, s, &ev, nop, NULL);
    evbus__matcher_match_checked_json(m, s, (const char *)data, size, nop, NULL);
    return 0;
}
