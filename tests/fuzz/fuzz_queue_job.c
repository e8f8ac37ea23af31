/* Fuzz target: the queue's job JSON check (lib/queue/job.c). Any input must
 * give GEN_OK or an error with a message, never a crash; an accepted job
 * re-seeded must parse again with the same model and the new seed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "queue/queue_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    gen__queue_job_info info;
    if (gen__queue_job_parse(text, size, 1u << 20, &info) != GEN_OK) {
        if (gen_last_error_message()[0] == '\0')
            abort(); /* every refusal says why */
        return 0;
    }
    char *reseeded = NULL;
    int64_t seed = info.has_seed ? info.seed + 1 : 1;
    if (gen__queue_job_with_seed(text, size, seed, &reseeded) == GEN_OK) {
        gen__queue_job_info again;
        if (gen__queue_job_parse(reseeded, strlen(reseeded), 2u << 20, &again) != GEN_OK)
            abort();
        if (!again.has_seed || again.seed != (seed & 0xFFFFFFFFll))
            abort();
        if ((info.model == NULL) != (again.model == NULL) ||
            (info.model && strcmp(info.model, again.model) != 0))
            abort();
        gen__queue_job_info_free(&again);
        gen__free(reseeded);
    }
    gen__queue_job_info_free(&info);
    return 0;
}
