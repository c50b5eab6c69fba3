/* Reading SendMessageBatch answers (plugins/sqs/sqs_response.c): the fast
 * scanner for all-successful answers and the jansson path behind it must
 * give the same per-entry results, whatever the layout. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>

#include "sqs.h"

TestSuite(sqs_response, .timeout = 30);

/* A case: an answer for n entries and the expected fault per entry
 * ('o' OK, 't' transient, 'e' event fault), or rc -1. */
typedef struct answer_case {
    char body[400];
    size_t n;
    int rc;
    char want[SQS_MAX_ENTRIES + 1];
} answer_case;

ParameterizedTestParameters(sqs_response, per_entry) {
    static answer_case cases[] = {
        /* The common answer, compact as SQS writes it. */
        {"{\"Successful\":[{\"Id\":\"0\",\"MessageId\":\"a\",\"MD5OfMessageBody\":\"m\"},"
         "{\"Id\":\"1\",\"MessageId\":\"b\",\"MD5OfMessageBody\":\"m\"}],\"Failed\":[]}",
         2, 0, "oo"},
        /* Whitespace anywhere, Failed absent, members in another order. */
        {" {\n \"Successful\" : [ { \"MessageId\" : \"a\" , \"Id\" : \"1\" } ,{\"Id\":\"0\"} ] "
         "}\n",
         2, 0, "oo"},
        /* An entry the answer does not mention is not known to be sent. */
        {"{\"Successful\":[{\"Id\":\"0\"},{\"Id\":\"2\"}],\"Failed\":[]}", 3, 0, "oto"},
        /* Ids out of range or not numbers name no entry. */
        {"{\"Successful\":[{\"Id\":\"7\"},{\"Id\":\"x\"},{\"Id\":\"0\"}]}", 2, 0, "ot"},
        /* Unknown members with nested values are skipped. */
        {"{\"Extra\":{\"a\":[1,2,{\"b\":null}],\"c\":true},\"Successful\":[{\"Id\":\"0\","
         "\"More\":[{\"x\":-1.5e3}]}],\"Failed\":[]}",
         1, 0, "o"},
        /* Failed entries: SenderFault decides (the jansson path). */
        {"{\"Successful\":[{\"Id\":\"0\"}],\"Failed\":[{\"Id\":\"1\",\"Code\":"
         "\"InvalidParameterValue\","
         "\"Message\":\"bad\",\"SenderFault\":true},{\"Id\":\"2\",\"Code\":\"InternalError\","
         "\"Message\":\"oops\",\"SenderFault\":false}]}",
         3, 0, "oet"},
        /* An escaped Id is read by jansson: "\u0030" is "0". */
        {"{\"Successful\":[{\"Id\":\"\\u0030\"}],\"Failed\":[]}", 1, 0, "o"},
        {"{}", 2, 0, "tt"},
        /* Not an answer: everything is retried. */
        {"{\"Successful\":[{\"Id\":\"0\"}", 1, -1, "t"},
        {"[{\"Id\":\"0\"}]", 1, -1, "t"},
        {"{\"Successful\":[{\"Id\":\"0\"}]} trailing", 1, -1, "t"},
        {"", 1, -1, "t"},
    };
    return cr_make_param_array(answer_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(answer_case *c, sqs_response, per_entry) {
    sqs_entry_result res[SQS_MAX_ENTRIES];
    int rc = sqs_read_response(c->body, strlen(c->body), c->n, res);
    cr_assert_eq(rc, c->rc, "rc %d for %s", rc, c->body);
    for (size_t i = 0; i < c->n; i++) {
        evbus_aws_fault want = c->want[i] == 'o'   ? EVBUS_AWS_OK
                               : c->want[i] == 'e' ? EVBUS_AWS_EVENT_FAULT
                                                   : EVBUS_AWS_TRANSIENT;
        cr_assert_eq(res[i].fault, want, "entry %zu of %s: fault %d, want %d (%s)", i, c->body,
                     res[i].fault, want, res[i].reason);
        if (want == EVBUS_AWS_OK)
            cr_assert_str_empty(res[i].reason);
        else
            cr_assert_str_not_empty(res[i].reason);
    }
}
