/**
 * @file test_test_pattern.c
 * @brief `evbus test-pattern`: output and grep-like exit codes.
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "match.h"

static int run(const char *pattern, const char *event) {
    char *argv[] = {"test-pattern", (char *)pattern, (char *)event, NULL};
    int rc = evbus__cmd_test_pattern(3, argv);
    fflush(stdout);
    return rc;
}

TestSuite(test_pattern, .init = cr_redirect_stdout, .timeout = 30);

Test(test_pattern, match) {
    cr_assert_eq(run("{\"source\":[\"aws.ec2\"]}", "{\"source\":\"aws.ec2\"}"), 0);
    cr_assert_stdout_eq_str("match\n");
}

Test(test_pattern, no_match_says_why) {
    cr_assert_eq(run("{\"source\":[\"aws.ec2\"],\"detail\":{\"state\":[\"running\"]}}",
                     "{\"source\":\"aws.ec2\",\"detail\":{\"state\":\"stopped\"}}"),
                 1);
    cr_assert_stdout_eq_str("no match\ndetail.state: wanted [\"running\"] (no value of the "
                            "event matched)\n");
}

Test(test_pattern, invalid_pattern) {
    cr_assert_eq(run("{\"detail\":{\"amount\":[{\"numeric\":[\">\"]}]}}", "{}"), 2);
    cr_assert_stdout_eq_str("invalid pattern\npattern.detail.amount[0].numeric: numeric needs an "
                            "operator and a number, or two of them for a range, e.g. [\">\", 0, "
                            "\"<=\", 5]\n");
}

Test(test_pattern, invalid_event) {
    cr_assert_eq(run("{\"source\":[\"a\"]}", "{\"source\":\n\"a\",}"), 2);
    cr_assert_stdout_eq_str("invalid event\nevent: expected a key at line 2 column 5 (byte 15)\n");
}

Test(test_pattern, files) {
    char pf[] = "/tmp/evbus-tp-XXXXXX", ef[] = "/tmp/evbus-tp-XXXXXX";
    int pd = mkstemp(pf), ed = mkstemp(ef);
    cr_assert(pd >= 0 && ed >= 0);
    const char *p = "{\"detail\":{\"n\":[{\"numeric\":[\">\",1]}]}}\n";
    const char *e = "{\"detail\":{\"n\":2}}\n";
    cr_assert_eq(write(pd, p, strlen(p)), (ssize_t)strlen(p));
    cr_assert_eq(write(ed, e, strlen(e)), (ssize_t)strlen(e));
    close(pd);
    close(ed);
    char pa[64], ea[64];
    snprintf(pa, sizeof pa, "@%s", pf);
    snprintf(ea, sizeof ea, "@%s", ef);
    int rc = run(pa, ea);
    unlink(pf);
    unlink(ef);
    cr_assert_eq(rc, 0);
    cr_assert_stdout_eq_str("match\n");
}

Test(test_pattern, stdin_event, .init = cr_redirect_stdout) {
    FILE *in = cr_get_redirected_stdin();
    fputs("{\"source\":\"b\"}", in);
    fclose(in);
    cr_assert_eq(run("{\"source\":[\"a\"]}", "-"), 1);
    cr_assert_stdout_eq_str("no match\nsource: wanted [\"a\"] (no value of the event matched)\n");
}

Test(test_pattern, usage_and_missing_file) {
    char *argv[] = {"test-pattern", "{}", NULL};
    cr_assert_eq(evbus__cmd_test_pattern(1, argv), 2);
    cr_assert_eq(run("@/nonexistent/p.json", "{}"), 2);
    cr_assert_eq(run("-", "-"), 2);
}
