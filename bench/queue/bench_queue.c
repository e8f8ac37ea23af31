/* Queue benchmark: enqueue throughput and claim latency (p50/p99) with 8
 * claiming threads and with 2 claiming processes, at several queue depths.
 * Prints one JSON object per line.
 *   bench_queue [--dir DIR] [--sizes 10000,100000] [--claims N] [--sync]
 * DIR defaults to $TMPDIR or /tmp (a real disk: synchronous=FULL fsyncs count). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gen/gen.h>

#define USERS 10

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char job[] =
    "{\"model\":\"stable-diffusion-v1-5\",\"prompt\":\"a photograph of an astronaut riding a "
    "horse on the moon, highly detailed\",\"negative_prompt\":\"blurry\",\"width\":512,"
    "\"height\":512,\"steps\":30,\"guidance\":7.5,\"scheduler\":\"euler\",\"seed\":1234}";

static gen_queue *open_queue(const char *path)
{
    gen_queue_options o = GEN_QUEUE_OPTIONS_INIT;
    o.max_queue_size = 10000000;
    o.busy_timeout_ms = 60000;
    gen_queue *q = NULL;
    if (gen_queue_open(&q, path, &o) != GEN_OK) {
        fprintf(stderr, "open %s: %s\n", path, gen_last_error_message());
        exit(1);
    }
    return q;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void fill(const char *path, long items, long batch)
{
    gen_queue *q = open_queue(path);
    double t0 = now_s();
    long done = 0;
    for (int u = 0; done < items; u = (u + 1) % USERS) {
        char user[16];
        snprintf(user, sizeof(user), "user%d", u);
        gen_queue_batch b = GEN_QUEUE_BATCH_INIT;
        b.job = job;
        b.user_id = user;
        b.runs = (uint32_t)(items - done < batch ? items - done : batch);
        gen_queue_enqueued *r = NULL;
        if (gen_queue_enqueue(&r, q, &b) != GEN_OK) {
            fprintf(stderr, "enqueue: %s\n", gen_last_error_message());
            exit(1);
        }
        done += (long)gen_queue_enqueued_count(r);
        gen_queue_enqueued_destroy(r);
    }
    double dt = now_s() - t0;
    printf("{\"bench\":\"queue\",\"op\":\"enqueue\",\"depth\":%ld,\"batch\":%ld,\"items\":%ld,"
           "\"seconds\":%.3f,\"items_per_s\":%.0f}\n",
           items, batch, items, dt, (double)items / dt);
    fflush(stdout);
    gen_queue_close(q);
}

typedef struct claimer {
    gen_queue *q; /* NULL: open one */
    const char *path;
    int index;
    long claims;
    double *lat; /* seconds per claim */
} claimer;

static void claim_n(claimer *c)
{
    gen_queue *q = c->q ? c->q : open_queue(c->path);
    char device[16];
    snprintf(device, sizeof(device), "cpu:%d", c->index);
    const char *models[] = {"stable-diffusion-v1-5"};
    for (long i = 0; i < c->claims; i++) {
        gen_queue_item *it = NULL;
        double t0 = now_s();
        if (gen_queue_claim(&it, q, device, models, 1) != GEN_OK || !it) {
            fprintf(stderr, "claim: %s\n", gen_last_error_message());
            exit(1);
        }
        c->lat[i] = now_s() - t0;
        gen_queue_item_destroy(it);
    }
    if (!c->q)
        gen_queue_close(q);
}

static void *claim_thread(void *arg)
{
    claim_n(arg);
    return NULL;
}

static void report(const char *workers, long depth, double *lat, long n, double wall)
{
    qsort(lat, (size_t)n, sizeof(double), cmp_double);
    printf("{\"bench\":\"queue\",\"op\":\"claim\",\"workers\":\"%s\",\"depth\":%ld,\"claims\":%ld,"
           "\"p50_us\":%.0f,\"p99_us\":%.0f,\"max_us\":%.0f,\"claims_per_s\":%.0f}\n",
           workers, depth, n, lat[n / 2] * 1e6, lat[(n * 99) / 100] * 1e6, lat[n - 1] * 1e6,
           (double)n / wall);
    fflush(stdout);
}

static void bench_threads(const char *path, long depth, long claims)
{
    enum { T = 8 };
    claimer c[T];
    pthread_t th[T];
    double *lat = malloc(sizeof(double) * (size_t)claims);
    long per = claims / T;
    /* One handle (connection) per thread, all open before the first claim and
     * closed after the last, as a worker pool holds them. */
    for (int i = 0; i < T; i++)
        c[i] = (claimer){open_queue(path), path, i, per, lat + i * per};
    double t0 = now_s();
    for (int i = 0; i < T; i++)
        pthread_create(&th[i], NULL, claim_thread, &c[i]);
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    double wall = now_s() - t0;
    for (int i = 0; i < T; i++)
        gen_queue_close(c[i].q);
    report("8 threads", depth, lat, per * T, wall);
    free(lat);
}

static void bench_processes(const char *path, long depth, long claims)
{
    long per = claims / 2;
    int fds[2][2];
    pid_t pid[2];
    double t0 = now_s();
    for (int p = 0; p < 2; p++) {
        if (pipe(fds[p]) != 0)
            exit(1);
        pid[p] = fork();
        if (pid[p] == 0) { /* child: no queue handle is open in the parent now */
            close(fds[p][0]);
            double *lat = malloc(sizeof(double) * (size_t)per);
            claimer c = {NULL, path, p, per, lat};
            claim_n(&c);
            size_t bytes = sizeof(double) * (size_t)per;
            const char *b = (const char *)lat;
            while (bytes > 0) {
                ssize_t w = write(fds[p][1], b, bytes);
                if (w <= 0)
                    _exit(1);
                b += w;
                bytes -= (size_t)w;
            }
            _exit(0);
        }
        close(fds[p][1]);
    }
    double *lat = malloc(sizeof(double) * (size_t)per * 2);
    for (int p = 0; p < 2; p++) {
        size_t bytes = sizeof(double) * (size_t)per, got = 0;
        char *b = (char *)(lat + p * per);
        while (got < bytes) {
            ssize_t r = read(fds[p][0], b + got, bytes - got);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        close(fds[p][0]);
        int status;
        waitpid(pid[p], &status, 0);
        if (got != bytes || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "claiming process %d failed\n", p);
            exit(1);
        }
    }
    report("2 processes", depth, lat, per * 2, now_s() - t0);
    free(lat);
}

static void remove_db(const char *path)
{
    const char *suffixes[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char p[1100];
        snprintf(p, sizeof(p), "%s%s", path, suffixes[i]);
        unlink(p);
    }
}

int main(int argc, char **argv)
{
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char sizes[256] = "10000,100000";
    long claims = 2000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--sizes") == 0 && i + 1 < argc)
            snprintf(sizes, sizeof(sizes), "%s", argv[++i]);
        else if (strcmp(argv[i], "--claims") == 0 && i + 1 < argc)
            claims = atol(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--dir DIR] [--sizes N,M] [--claims N]\n", argv[0]);
            return 2;
        }
    }
    if (claims < 16)
        claims = 16;
    char *save = NULL;
    for (char *tok = strtok_r(sizes, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        long depth = atol(tok);
        if (depth < claims)
            depth = claims;
        char path[1024];
        snprintf(path, sizeof(path), "%s/bench-queue-%ld-%d.db", dir, depth, (int)getpid());
        /* Each measurement starts from a full queue of `depth` items. */
        fill(path, depth, 1000);
        bench_threads(path, depth, claims);
        remove_db(path);
        fill(path, depth, 1000);
        bench_processes(path, depth, claims);
        remove_db(path);
    }
    /* Single-item enqueues (one transaction each) at a small depth. */
    char path[1024];
    snprintf(path, sizeof(path), "%s/bench-queue-single-%d.db", dir, (int)getpid());
    fill(path, 500, 1);
    remove_db(path);
    return 0;
}
