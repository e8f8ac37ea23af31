/* Job JSON (what the queue stores and workers read): parse, and for any job
 * that parses, writing it back and parsing again gives the same JSON. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gen/gen.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    gen_job *job = NULL;
    gen_status st = gen_job_from_json(&job, text);
    if (st != GEN_OK) {
        if (job || gen_last_error_message()[0] == '\0')
            abort();
        free(text);
        return 0;
    }
    size_t needed = 0;
    (void)gen_job_to_json(job, NULL, 0, &needed);
    char *a = malloc(needed), *b = malloc(needed);
    gen_job *again = NULL;
    if (!a || !b || gen_job_to_json(job, a, needed, NULL) != GEN_OK ||
        gen_job_from_json(&again, a) != GEN_OK || gen_job_to_json(again, b, needed, NULL) != GEN_OK ||
        strcmp(a, b) != 0)
        abort(); /* round trip must be exact */
    (void)gen_job_validate(job);
    gen_job_destroy(again);
    gen_job_destroy(job);
    free(a);
    free(b);
    free(text);
    return 0;
}
