/* A separate process for the queue tests (fork/exec'd by them):
 *   queue_helper claim DB COUNT DEVICE   claim COUNT items, print each id, complete it
 *   queue_helper hold DB COUNT DEVICE    claim COUNT items, print ids and "ready", then
 *                                        wait to be killed (heartbeat running)
 *   queue_helper fill DB LIMIT_BYTES     RLIMIT_FSIZE = LIMIT, enqueue until it fails;
 *                                        print "enqueued N" and "status S"
 *   queue_helper crash-open DB POINT N   arm crash point POINT for its Nth pass, open the
 *                                        queue (dies there with SIGKILL); exit 0 if it never came
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <gen/gen.h>

#include "core/crash_point.h"

static gen_queue *open_or_die(const char *path, uint32_t heartbeat_ms)
{
    gen_queue_options o = GEN_QUEUE_OPTIONS_INIT;
    o.heartbeat_ms = heartbeat_ms;
    o.busy_timeout_ms = 30000;
    gen_queue *q = NULL;
    if (gen_queue_open(&q, path, &o) != GEN_OK) {
        fprintf(stderr, "queue_helper: open %s: %s\n", path, gen_last_error_message());
        exit(2);
    }
    return q;
}

static int claim_items(const char *path, long count, const char *device, int hold)
{
    gen_queue *q = open_or_die(path, hold ? 200 : 0);
    for (long i = 0; i < count; i++) {
        gen_queue_item *it = NULL;
        if (gen_queue_claim(&it, q, device, NULL, 0) != GEN_OK) {
            fprintf(stderr, "queue_helper: claim: %s\n", gen_last_error_message());
            return 3;
        }
        if (!it) {
            printf("empty\n");
            break;
        }
        printf("%lld\n", (long long)gen_queue_item_id(it));
        if (!hold && gen_queue_set_status(NULL, q, gen_queue_item_id(it), GEN_QUEUE_COMPLETED,
                                          NULL, NULL) != GEN_OK) {
            fprintf(stderr, "queue_helper: complete: %s\n", gen_last_error_message());
            return 3;
        }
        gen_queue_item_destroy(it);
    }
    if (hold) {
        printf("ready\n");
        fflush(stdout);
        for (;;)
            pause();
    }
    gen_queue_close(q);
    return 0;
}

static int fill(const char *path, long limit)
{
    gen_queue_options o = GEN_QUEUE_OPTIONS_INIT;
    o.heartbeat_ms = 0;
    o.max_queue_size = 1000000;
    gen_queue *q = NULL;
    if (gen_queue_open(&q, path, &o) != GEN_OK) {
        fprintf(stderr, "queue_helper: open %s: %s\n", path, gen_last_error_message());
        return 2;
    }
    /* Writes past the limit fail with EFBIG instead of killing us. */
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {(rlim_t)limit, (rlim_t)limit};
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0) {
        perror("setrlimit");
        return 2;
    }
    char job[2200];
    memset(job, 0, sizeof(job));
    strcpy(job, "{\"prompt\":\"");
    memset(job + strlen(job), 'x', 2000);
    strcat(job, "\",\"seed\":1}");
    long enqueued = 0;
    gen_status st = GEN_OK;
    for (int i = 0; i < 100000 && st == GEN_OK; i++) {
        gen_queue_batch b = GEN_QUEUE_BATCH_INIT;
        b.job = job;
        b.runs = 20;
        gen_queue_enqueued *r = NULL;
        st = gen_queue_enqueue(&r, q, &b);
        if (st == GEN_OK)
            enqueued += (long)gen_queue_enqueued_count(r);
        gen_queue_enqueued_destroy(r);
    }
    printf("enqueued %ld\nstatus %d\nmessage %s\n", enqueued, (int)st, gen_last_error_message());
    /* Claims and status changes must fail cleanly too. */
    gen_queue_item *it = NULL;
    gen_status cst = gen_queue_claim(&it, q, "cpu:0", NULL, 0);
    printf("claim %d\n", (int)cst);
    gen_queue_item_destroy(it);
    fflush(stdout);
    gen_queue_close(q);
    return 0;
}

static int crash_open(const char *path, const char *point, unsigned nth)
{
    gen__crash_point_arm(point, nth);
    gen_queue *q = open_or_die(path, 0);
    gen_queue_close(q);
    printf("opened\n");
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 5 && strcmp(argv[1], "claim") == 0)
        return claim_items(argv[2], atol(argv[3]), argv[4], 0);
    if (argc == 5 && strcmp(argv[1], "hold") == 0)
        return claim_items(argv[2], atol(argv[3]), argv[4], 1);
    if (argc == 4 && strcmp(argv[1], "fill") == 0)
        return fill(argv[2], atol(argv[3]));
    if (argc == 5 && strcmp(argv[1], "crash-open") == 0)
        return crash_open(argv[2], argv[3], (unsigned)atol(argv[4]));
    fprintf(stderr, "usage: queue_helper claim|hold DB COUNT DEVICE | fill DB LIMIT | "
                    "crash-open DB POINT N\n");
    return 64;
}
