/* Text from plugins or the store in control answers. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <jansson.h>
#include <string.h>

#include "control.h"

TestSuite(control_text, .timeout = 10);

typedef struct text_case {
    char in[32];
    char out[48];
} text_case;

/* Invalid UTF-8 made json_pack fail, and the dead letter (or the target's
 * status entry) holding it was left out of the answer without a word. */
ParameterizedTestParameters(control_text, invalid_utf8_becomes_replacement_characters) {
    static text_case cases[] = {
        {"plain", "plain"},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
        {"bad \xff byte", "bad \xef\xbf\xbd byte"},
        {"cut \xe2\x82", "cut \xef\xbf\xbd\xef\xbf\xbd"},
        {"\xc0\xaf overlong", "\xef\xbf\xbd\xef\xbf\xbd overlong"},
        {"", ""},
    };
    return cr_make_param_array(text_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(text_case *c, control_text, invalid_utf8_becomes_replacement_characters) {
    json_t *j = evbus__control_text(c->in);
    cr_assert_not_null(j);
    cr_assert_str_eq(json_string_value(j), c->out);
    json_decref(j);
}
