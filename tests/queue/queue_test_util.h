/* Helpers shared by the queue tests: scratch files, enqueue shorthands. */
#ifndef QUEUE_TEST_UTIL_H
#define QUEUE_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

#include <gen/gen.h>

/* A fresh directory for one test's database: on tmpfs when there is one, so
 * that synchronous=FULL fsyncs do not make the tests slow. */
static inline void qt_tempdir(char *buf, size_t size)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    snprintf(buf, size, "%s/libgen-queue-XXXXXX", base);
    if (!mkdtemp(buf)) {
        perror("mkdtemp");
        abort();
    }
}

static inline void qt_path(char *buf, size_t size, const char *dir, const char *name)
{
    snprintf(buf, size, "%s/%s", dir, name);
}

static inline void qt_rmtree(const char *dir)
{
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

/* Enqueue `runs` copies of `job` for `user`; returns the first item id (0 on failure). */
static inline int64_t qt_enqueue(gen_queue *q, const char *user, const char *job, uint32_t runs,
                                 int32_t priority, const char *batch_id, const char *destination)
{
    gen_queue_batch b = GEN_QUEUE_BATCH_INIT;
    b.user_id = user;
    b.job = job;
    b.runs = runs;
    b.priority = priority;
    b.batch_id = batch_id;
    b.destination = destination;
    gen_queue_enqueued *r = NULL;
    if (gen_queue_enqueue(&r, q, &b) != GEN_OK) {
        fprintf(stderr, "enqueue failed: %s\n", gen_last_error_message());
        return 0;
    }
    int64_t id = gen_queue_enqueued_item_id(r, 0);
    gen_queue_enqueued_destroy(r);
    return id;
}

/* A running queue_helper with its stdout on a pipe. */
typedef struct qt_child {
    pid_t pid;
    FILE *out;
} qt_child;

static inline qt_child qt_spawn(const char *const argv_tail[])
{
    const char *helper = getenv("QUEUE_HELPER");
    if (!helper) {
        fprintf(stderr, "QUEUE_HELPER is not set (run through meson test)\n");
        abort();
    }
    char *argv[16];
    int n = 0;
    argv[n++] = (char *)helper;
    for (int i = 0; argv_tail[i] && n < 15; i++)
        argv[n++] = (char *)argv_tail[i];
    argv[n] = NULL;
    int fds[2];
    if (pipe(fds) != 0)
        abort();
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    qt_child c = {0, NULL};
    if (posix_spawn(&c.pid, helper, &fa, NULL, argv, environ) != 0) {
        perror("posix_spawn");
        abort();
    }
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    c.out = fdopen(fds[0], "r");
    return c;
}

/* Wait for the child; returns its exit status, or 128 + signal. */
static inline int qt_wait(qt_child *c)
{
    int status = 0;
    while (waitpid(c->pid, &status, 0) < 0) {
    }
    if (c->out)
        fclose(c->out);
    c->out = NULL;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#endif
