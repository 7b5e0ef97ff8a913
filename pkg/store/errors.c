/* Error replies: what they concern (see tf_store_error_classify). */
#include <string.h>

#include "store/store.h"

static int starts(const char *msg, const char *word)
{
    size_t n = strlen(word);
    return strncmp(msg, word, n) == 0 && (msg[n] == ' ' || msg[n] == '\0');
}

tf_store_error_class tf_store_error_classify(const char *msg)
{
    if (!msg)
        return TF_STORE_ERR_SERVER;
    /* A per-key error, also when a script reports it ("... script: ..."): the key
     * holds something else than touchflow wrote there. TFSTATE is the commit
     * script's own word for a customer's hash it cannot write safely. */
    if (starts(msg, "WRONGTYPE") || starts(msg, "TFSTATE") || strstr(msg, "WRONGTYPE Operation") ||
        strstr(msg, "hash value is not an integer"))
        return TF_STORE_ERR_CUSTOMER;
    if (starts(msg, "READONLY") || starts(msg, "MOVED") || starts(msg, "ASK") || starts(msg, "MASTERDOWN"))
        return TF_STORE_ERR_ROLE;
    /* OOM, LOADING, BUSY, TRYAGAIN, CLUSTERDOWN, NOREPLICAS, NOAUTH, NOPERM,
     * EXECABORT, NOSCRIPT and anything unknown: nothing says it is one customer's,
     * so nothing is dead-lettered for it. */
    return TF_STORE_ERR_SERVER;
}
