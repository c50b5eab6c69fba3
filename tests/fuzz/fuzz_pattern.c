/**
 * @file fuzz_pattern.c
 * @brief Fuzz target: the pattern compiler, then the matcher.
 *
 * Input: a pattern, optionally followed by a newline and an event. The
 * pattern is compiled as one rule, and with a few fixed rules around it so
 * that deduplication and anchoring meet it; whatever compiles is matched
 * against the event (or a fixed one) through both entry points, and a rule
 * that matches must match the same way in both matchers.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "match.h"

static const char fixed_event[] =
    "{\"version\":\"0\",\"id\":\"1\",\"source\":\"aws.ec2\",\"detail-type\":\"x\","
    "\"account\":\"1\",\"time\":\"t\",\"region\":\"us-east-1\",\"resources\":[\"a\",\"b\"],"
    "\"detail\":{\"state\":\"running\",\"n\":5,\"ip\":\"10.0.0.1\",\"a\":[{\"b\":null}],"
    "\"s\":\"Hello\\u00e9\",\"t\":true}}";

static const char *const others[] = {
    "{\"source\":[\"aws.ec2\"]}",
    "{\"detail\":{\"state\":[{\"anything-but\":\"x\"}],\"n\":[{\"numeric\":[\">\",1]}]}}",
    "{\"detail\":{\"s\":[{\"prefix\":{\"equals-ignore-case\":\"HEL\"}}]}}",
    "{\"$or\":[{\"region\":[{\"exists\":false}]},{\"detail\":{\"ip\":[{\"cidr\":\"10.0.0.0/"
    "8\"}]}}]}",
};

static void count(void *arg, uint32_t rule) {
    uint8_t *hits = arg;
    hits[rule] = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 8192)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    /* The pattern ends at the first newline or NUL; the event follows. */
    char *nl = memchr(text, '\n', size);
    const char *event = fixed_event;
    size_t elen = sizeof fixed_event - 1;
    if (nl) {
        *nl = '\0';
        event = nl + 1;
        elen = size - (size_t)(nl + 1 - text);
    }

    char err[512];
    evbus__matcher *one = NULL, *many = NULL;
    evbus__match_scratch *s1 = NULL, *s2 = NULL;
    evbus__match_rule rules[5] = {{"fuzz", text}};
    for (size_t i = 0; i < 4; i++)
        rules[i + 1] = (evbus__match_rule){"other", others[i]};

    evbus_err rc = evbus__matcher_compile(rules, 1, &one, err, sizeof err);
    if (rc != EVBUS_OK) {
        /* Refusals must say which rule. */
        if (rc == EVBUS_ECONFIG && strncmp(err, "rule \"fuzz\": ", 13) != 0)
            abort();
        goto out;
    }
    if (evbus__matcher_compile(rules, 5, &many, err, sizeof err) != EVBUS_OK)
        abort();
    if (evbus__match_scratch_new(one, &s1) || evbus__match_scratch_new(many, &s2))
        goto out;
    uint8_t h1[5] = {0}, h2[5] = {0};
    evbus_err r1 = evbus__matcher_match_json(one, s1, event, elen, count, h1);
    evbus_err r2 = evbus__matcher_match_json(many, s2, event, elen, count, h2);
    if (r1 != r2 || h1[0] != h2[0])
        abort();
    /* On text the validating path accepted, skipping without validation
     * must give the same answer. */
    uint8_t h4[5] = {0};
    if (r2 == EVBUS_OK &&
        (evbus__matcher_match_checked_json(many, s2, event, elen, count, h4) != EVBUS_OK ||
         memcmp(h2, h4, sizeof h4) != 0))
        abort();
    if (r1 == EVBUS_OK) {
        char why[256];
        evbus__matcher_explain(one, s1, 0, why, sizeof why);
    }
    /* The envelope entry point, with the event's text as the detail. */
    evbus__match_event ev = {"0", "id", "aws.ec2", "x",   "t",  "us-east-1",
                             "1", NULL, 0,         event, elen, false};
    uint8_t h3[5] = {0};
    evbus__matcher_match(many, s2, &ev, count, h3);
    /* Text wrongly vouched for: any answer, but no read outside it. */
    ev.detail_checked = true;
    evbus__matcher_match(many, s2, &ev, count, h3);
    evbus__matcher_match_checked_json(many, s2, event, elen, count, h3);
out:
    evbus__match_scratch_destroy(&s1);
    evbus__match_scratch_destroy(&s2);
    evbus__matcher_destroy(&one);
    evbus__matcher_destroy(&many);
    free(text);
    return 0;
}
