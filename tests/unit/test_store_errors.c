/* Unit tests for the classification of Redis error replies (pkg/store/errors.c):
 * which concern one customer's keys (its records go to the dead-letter topic after
 * a few attempts), which the server (pause and retry), which a node that is no
 * longer the one to write to (reconnect). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store/store.h"

static void test_wrong_type_is_the_customer(void **state)
{
    (void)state;
    assert_int_equal(tf_store_error_classify("WRONGTYPE Operation against a key holding the wrong kind of value"),
                     TF_STORE_ERR_CUSTOMER);
    /* Redis 7 reports an error inside a script with the script's place appended. */
    assert_int_equal(tf_store_error_classify("WRONGTYPE Operation against a key holding the wrong kind of value "
                                             "script: 1c2d, on @user_script:25."),
                     TF_STORE_ERR_CUSTOMER);
    /* Older servers wrap it. */
    assert_int_equal(tf_store_error_classify("ERR Error running script (call to f_1c2d): @user_script:25: "
                                             "WRONGTYPE Operation against a key holding the wrong kind of value"),
                     TF_STORE_ERR_CUSTOMER);
}

static void test_our_own_state_word_is_the_customer(void **state)
{
    (void)state;
    assert_int_equal(tf_store_error_classify("TFSTATE tf:c:{x} holds a string, not a hash"), TF_STORE_ERR_CUSTOMER);
    assert_int_equal(tf_store_error_classify("ERR hash value is not an integer"), TF_STORE_ERR_CUSTOMER);
}

static void test_role_changes_reconnect(void **state)
{
    (void)state;
    assert_int_equal(tf_store_error_classify("READONLY You can't write against a read only replica."),
                     TF_STORE_ERR_ROLE);
    assert_int_equal(tf_store_error_classify("MOVED 3999 127.0.0.1:6381"), TF_STORE_ERR_ROLE);
    assert_int_equal(tf_store_error_classify("ASK 3999 127.0.0.1:6381"), TF_STORE_ERR_ROLE);
    assert_int_equal(tf_store_error_classify("MASTERDOWN Link with MASTER is down"), TF_STORE_ERR_ROLE);
}

static void test_server_wide_errors(void **state)
{
    (void)state;
    static const char *const server[] = {
        "OOM command not allowed when used memory > 'maxmemory'.",
        "LOADING Redis is loading the dataset in memory",
        "BUSY Redis is busy running a script.",
        "TRYAGAIN Multiple keys request during rehashing of slot",
        "CLUSTERDOWN The cluster is down",
        "NOREPLICAS Not enough good replicas to write.",
        "NOAUTH Authentication required.",
        "EXECABORT Transaction discarded because of previous errors.",
        "NOSCRIPT No matching script. Please use EVAL.",
        "ERR something nobody expected",
        "",
    };
    for (size_t i = 0; i < sizeof server / sizeof server[0]; i++)
        assert_int_equal(tf_store_error_classify(server[i]), TF_STORE_ERR_SERVER);
    assert_int_equal(tf_store_error_classify(NULL), TF_STORE_ERR_SERVER);
}

static void test_a_prefix_is_not_a_word(void **state)
{
    (void)state;
    /* "ASKING..." or "MOVEDX" are not the cluster redirections. */
    assert_int_equal(tf_store_error_classify("ASKING is not allowed"), TF_STORE_ERR_SERVER);
    assert_int_equal(tf_store_error_classify("MOVEDX 1"), TF_STORE_ERR_SERVER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wrong_type_is_the_customer),
        cmocka_unit_test(test_our_own_state_word_is_the_customer),
        cmocka_unit_test(test_role_changes_reconnect),
        cmocka_unit_test(test_server_wide_errors),
        cmocka_unit_test(test_a_prefix_is_not_a_word),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
