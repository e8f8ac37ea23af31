/* gen serve: one worker per device processes the queue file until stopped.
 *
 * Stopping. SIGINT and SIGTERM go to a handler that only writes a byte to a
 * self-pipe (async-signal-safe; it never calls libgen). Blocking the signals
 * and taking them with sigwait would not do: threads that libraries start
 * before main (OpenBLAS's pool) keep them unblocked. The main thread reads
 * the pipe every 100 ms and acts:
 *   1st: pause the workers (they claim nothing more), let running items
 *        finish while their bars keep moving, then stop;
 *   2nd: stop now with GEN_STOP_REQUEUE: running items stop within a step and
 *        go back to pending. Not GEN_STOP_CANCEL: whoever stops a service
 *        should not decide the outcome of other people's jobs; a requeued item
 *        runs again on the next `gen serve` (or another process sharing the
 *        file). Cancel items themselves with `gen queue cancel`;
 *   3rd: exit at once (the next open of the file recovers the items).
 * The final stop is always GEN_STOP_REQUEUE: once draining has seen no item
 * running it equals a drain, and an item claimed in the moment the pause took
 * effect goes back to pending instead of being lost or waited for.
 */
#include <pthread.h>
#include <signal.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"

static const char serve_help[] =
    "usage: gen [--set NAME=VALUE]... serve [--db PATH] [--devices LIST] [--until-empty]\n"
    "                                     [--plain]\n"
    "\n"
    "Start one worker per device (generation_devices, or --devices LIST such as\n"
    "\"auto\", \"cuda:0,cuda:1\", \"cpu:0,cpu:1\") and process the queue file until\n"
    "stopped. On a terminal, one progress bar per running item (device, item,\n"
    "stage, step/total, it/s, ETA); otherwise plain lines.\n"
    "\n"
    "  --db PATH       the queue file (else LIBGEN_DB_PATH); created if missing\n"
    "  --devices LIST  same as the global --set generation_devices=LIST\n"
    "  --until-empty   stop (draining) once no item is pending or running\n"
    "  --plain         plain lines even on a terminal\n"
    "\n"
    "Ctrl-C (SIGINT) or SIGTERM: finish the running items, claim no more, stop.\n"
    "A second Ctrl-C: stop now; running items go back to pending (GEN_STOP_REQUEUE).\n"
    "A third: exit at once.\n"
    "\n"
    "Exit codes: 0 stopped cleanly, 1 runtime error (the workers could not start,\n"
    "or every worker stopped on an error), 2 usage error.\n";

static int signal_pipe[2] = {-1, -1};
static volatile sig_atomic_t signal_count;
static int signals_seen; /* main thread: bytes read from the pipe */

static void on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    char byte = 's';
    ssize_t w = write(signal_pipe[1], &byte, 1);
    (void)w;
    if (++signal_count >= 3) {
        static const char msg[] = "\ngen serve: third signal: exiting now\n";
        w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
        _exit(130);
    }
    errno = saved;
}

static int install_signals(void)
{
    if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0)
        return -1;
    return 0;
}

static void read_signals(void)
{
    char buf[16];
    ssize_t n;
    while ((n = read(signal_pipe[0], buf, sizeof(buf))) > 0)
        signals_seen += (int)n;
}

/* On a terminal, libgen's log lines (written from worker threads) would land
 * in the middle of the progress bars: they are kept here instead and printed
 * above the bars by the main thread. */
#define LOG_RING 64
typedef struct log_ring {
    pthread_mutex_t mu;
    char lines[LOG_RING][512];
    int head, count;
    unsigned dropped;
} log_ring;

static void ring_log(gen_log_level level, const char *message, void *user_data)
{
    log_ring *r = user_data;
    pthread_mutex_lock(&r->mu);
    if (r->count == LOG_RING) {
        r->dropped++;
    } else {
        snprintf(r->lines[(r->head + r->count) % LOG_RING], sizeof(r->lines[0]), "libgen [%s] %s",
                 gen_log_level_name(level), message);
        r->count++;
    }
    pthread_mutex_unlock(&r->mu);
}

static void ring_flush(log_ring *r, progress *view)
{
    for (;;) {
        char line[512];
        unsigned dropped = 0;
        pthread_mutex_lock(&r->mu);
        bool have = r->count > 0;
        if (have) {
            memcpy(line, r->lines[r->head], sizeof(line));
            r->head = (r->head + 1) % LOG_RING;
            r->count--;
        } else {
            dropped = r->dropped;
            r->dropped = 0;
        }
        pthread_mutex_unlock(&r->mu);
        if (!have) {
            if (dropped)
                progress_line(view, "libgen [warn] %u log lines dropped", dropped);
            return;
        }
        progress_line(view, "%s", line);
    }
}

enum state { RUNNING, DRAINING, STOPPED };

typedef struct server {
    gen_context *ctx;
    progress *view;
    log_ring *log; /* NULL: libgen logs to stderr itself */
    enum state state;
    int handled;                  /* signals acted upon */
    size_t workers, dead_workers; /* a worker stops for good on a WORKER_ERROR */
    int64_t drain_since;
    int64_t next_check; /* next poll of the queue (dropped events, --until-empty) */
    bool until_empty;
} server;

static void pump_events(server *s, int timeout_ms)
{
    gen_event *ev = NULL;
    if (gen_context_next_event(s->ctx, &ev, timeout_ms) != GEN_OK)
        return;
    for (int n = 0; ev && n < 1024; n++) {
        if (gen_event_type_of(ev) == GEN_EVENT_WORKER_ERROR)
            s->dead_workers++;
        progress_event(s->view, ev);
        gen_event_destroy(ev);
        ev = NULL;
        if (gen_context_next_event(s->ctx, &ev, 0) != GEN_OK)
            break;
    }
    gen_event_destroy(ev);
}

static int stop_now(server *s)
{
    gen_status st = gen_context_stop(s->ctx, GEN_STOP_REQUEUE);
    s->state = STOPPED;
    pump_events(s, 0);
    return st == GEN_OK ? EXIT_OK : cli_fail("stopping the workers");
}

/* Sessions whose end event was dropped (the event queue overflowed) would
 * hold the drain forever: ask the queue. */
static void check_sessions(server *s)
{
    gen_queue *q = gen_context_queue(s->ctx);
    for (size_t i = progress_active(s->view); i-- > 0;) {
        int64_t item = progress_active_item(s->view, i);
        int32_t status = GEN_QUEUE_IN_PROGRESS;
        if (gen_queue_get_status(&status, q, item) == GEN_OK && status != GEN_QUEUE_IN_PROGRESS)
            progress_forget(s->view, item, status);
    }
}

static bool queue_empty(server *s)
{
    gen_queue_counts k;
    memset(&k, 0, sizeof(k));
    k.version = GEN_QUEUE_COUNTS_VERSION;
    if (gen_queue_get_counts(&k, gen_context_queue(s->ctx), NULL, NULL) != GEN_OK)
        return false;
    return k.pending == 0 && k.in_progress == 0;
}

static int begin_drain(server *s, const char *why)
{
    if (gen_context_pause(s->ctx) != GEN_OK)
        return cli_fail("pausing the workers");
    s->state = DRAINING;
    s->drain_since = cli_now_ns();
    progress_line(s->view, "%s", why);
    return EXIT_OK;
}

static int run_loop(server *s)
{
    int rc = EXIT_OK;
    while (s->state != STOPPED && rc == EXIT_OK) {
        pump_events(s, 100);
        if (s->log)
            ring_flush(s->log, s->view);
        progress_tick(s->view, false);
        read_signals();
        int seen = signals_seen;
        int64_t now = cli_now_ns();
        if (s->workers > 0 && s->dead_workers >= s->workers) {
            progress_line(s->view, "every worker stopped on an error: stopping");
            stop_now(s);
            return EXIT_RUNTIME;
        }
        if (seen >= 2 && s->handled < 2) {
            s->handled = 2;
            progress_line(s->view, "stopping now: running items go back to the queue");
            return stop_now(s);
        }
        if (seen >= 1 && s->handled < 1) {
            s->handled = 1;
            if (s->state == RUNNING)
                rc = begin_drain(s, "stopping: letting running items finish (Ctrl-C again to "
                                    "stop them now and put them back in the queue)");
        }
        if (now >= s->next_check) {
            s->next_check = now + 500000000LL;
            check_sessions(s);
            if (s->until_empty && s->state == RUNNING && progress_active(s->view) == 0 &&
                queue_empty(s))
                rc = begin_drain(s, "the queue is empty: stopping");
        }
        /* A claim racing with the pause shows up within a poll; wait 300 ms. */
        if (rc == EXIT_OK && s->state == DRAINING && progress_active(s->view) == 0 &&
            now - s->drain_since > 300000000LL)
            rc = stop_now(s);
    }
    return rc;
}

int cmd_serve(cli_env *env)
{
    const char *db = NULL, *devices = NULL;
    bool until_empty = false, plain = false;
    cli_args a;
    cli_args_init(&a, "serve", env->argc, env->argv, 1);
    while (cli_args_more(&a)) {
        if (cli_help(&a)) {
            fputs(serve_help, stdout);
            return EXIT_OK;
        } else if (cli_opt(&a, "--db", &db) || cli_opt(&a, "--devices", &devices) ||
                   cli_flag_to(&a, "--until-empty", &until_empty) ||
                   cli_flag_to(&a, "--plain", &plain)) {
        } else {
            cli_unknown(&a);
        }
    }
    if (a.error)
        return EXIT_USAGE;
    const char *path = cli_db_path(env, db, "serve");
    if (!path)
        return EXIT_USAGE;
    gen_context_options opts = env->options;
    gen_status st = gen_context_options_set(&opts, "db_path", path);
    if (st == GEN_OK && devices)
        st = gen_context_options_set(&opts, "generation_devices", devices);
    if (st != GEN_OK)
        return cli_fail_input("serve", st);

    if (install_signals() != 0) {
        fprintf(stderr, "gen serve: cannot install the signal handlers: %s\n", strerror(errno));
        return EXIT_RUNTIME;
    }

    int rc = EXIT_OK;
    server s;
    memset(&s, 0, sizeof(s));
    s.until_empty = until_empty;
    bool tty = !plain && isatty(STDOUT_FILENO);
    static log_ring ring = {.mu = PTHREAD_MUTEX_INITIALIZER};
    if (tty && !opts.log_fn) {
        opts.log_fn = ring_log;
        opts.log_user_data = &ring;
        s.log = &ring;
    }
    if (gen_context_create(&s.ctx, &opts) != GEN_OK) {
        rc = cli_fail("cannot create the context");
        goto out;
    }
    if (gen_cli_context_hook)
        gen_cli_context_hook(s.ctx);
    if (gen_context_enable_event_queue(s.ctx, 0) != GEN_OK) {
        rc = cli_fail("cannot enable events");
        goto out;
    }
    s.view = progress_new(stdout, tty);
    if (!s.view) {
        rc = cli_fail("out of memory");
        goto out;
    }
    if (s.log)
        ring_flush(s.log, s.view); /* the context's startup lines first */
    st = gen_context_start(s.ctx);
    if (st != GEN_OK) {
        rc = cli_fail("cannot start the workers");
        if (st == GEN_EUNSUPPORTED)
            fprintf(stderr, "gen serve: this build of libgen cannot process items yet (no item "
                            "runner: the generation pipeline is not merged); the queue is "
                            "unchanged\n");
        goto out;
    }
    const gen_device_pool *pool = gen_context_device_pool(s.ctx);
    size_t n = gen_device_pool_count(pool);
    s.workers = n;
    progress_line(s.view, "serving %s on %zu device%s (Ctrl-C: finish running items and stop)",
                  path, n, n == 1 ? "" : "s");
    for (size_t d = 0; d < n; d++)
        progress_line(s.view, "  %s  %s", gen_device_pool_id(pool, d),
                      gen_device_pool_label(pool, d));
    rc = run_loop(&s);
    if (s.log)
        ring_flush(s.log, s.view);
    progress_totals t = progress_get_totals(s.view);
    progress_line(s.view,
                  "stopped: %llu started, %llu completed, %llu failed, %llu canceled, "
                  "%llu put back in the queue",
                  (unsigned long long)t.started, (unsigned long long)t.completed,
                  (unsigned long long)t.failed, (unsigned long long)t.canceled,
                  (unsigned long long)t.requeued);
out:
    gen_context_destroy(s.ctx);
    if (s.log && s.view)
        ring_flush(s.log, s.view);
    progress_free(s.view);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (s.log) /* anything logged before the display existed */
        for (int i = 0; i < ring.count; i++)
            fprintf(stderr, "%s\n", ring.lines[(ring.head + i) % LOG_RING]);
    return rc;
}
