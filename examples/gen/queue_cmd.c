/* gen queue add | list | cancel | retry | prune | status: the queue file from
 * the command line. The CLI acts as the queue's administrator: without --user
 * a command reaches every user's items; --user narrows it to one user (and
 * refuses, with exit code 1, an explicit item of another user). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"

#define MAX_IDS 4096

static const char queue_help[] =
    "usage: gen queue SUBCOMMAND [--db PATH] [OPTIONS]\n"
    "\n"
    "subcommands:\n"
    "  add      enqueue a job x runs (a batch)\n"
    "  list     list items (--json for machine-readable output)\n"
    "  status   item counts by status (--json)\n"
    "  cancel   cancel items (pending and running)\n"
    "  retry    enqueue failed or canceled items again\n"
    "  prune    delete finished (completed, failed, canceled) items\n"
    "\n"
    "The queue file is --db PATH, else LIBGEN_DB_PATH (or the global --db / --set\n"
    "db_path=...). Only `add` creates a missing file. `gen queue SUBCOMMAND --help`\n"
    "describes each one. Exit codes: 0 success, 1 runtime error, 2 usage error.\n";

static const char add_help_head[] =
    "usage: gen queue add [--db PATH] [JOB FIELDS] [--runs N] [--user U] [--priority P]\n"
    "                     [--prepend] [--destination D] [--queue Q] [--origin O]\n"
    "                     [--batch ID] [--json]\n"
    "\n"
    "Enqueue one batch: the job x N runs (run i gets seed + i; without --seed a\n"
    "random seed is drawn, so every image can be made again). The job is checked\n"
    "before anything is written (a bad field exits 2 naming it).\n"
    "\n"
    "  --runs N          runs of the job (default 1)\n"
    "  --user U          the user the items belong to (default \"system\")\n"
    "  --priority P      higher first within the user (default 0)\n"
    "  --prepend         priority = 1 + the highest pending priority\n"
    "  --destination D   free text for the application (cancel --destination D)\n"
    "  --queue Q         queue id inside the file (default \"default\")\n"
    "  --origin O        free text recorded with the items\n"
    "  --batch ID        batch id (default: a new random id)\n"
    "  --no-model-check  enqueue even if the model cannot be inspected here (e.g.\n"
    "                    the workers run on a machine with other paths)\n"
    "  --json            print {\"batch_id\", \"item_ids\", \"requested\"}\n"
    "\n";

static const char list_help[] =
    "usage: gen queue list [--db PATH] [--status S] [--user U] [--batch B]\n"
    "                      [--destination D] [--queue Q] [--after ID] [--limit N]\n"
    "                      [--desc] [--all] [--json]\n"
    "\n"
    "List items ordered by id (--desc: newest first), --limit per page (default\n"
    "100; --all: every page). S is pending, in_progress, completed, failed or\n"
    "canceled. --json prints one array of objects with every item field; \"job\"\n"
    "is the job object.\n";

static const char status_help[] =
    "usage: gen queue status [--db PATH] [--queue Q] [--user U] [--batch B] [--json]\n"
    "\n"
    "Item counts by status (pending, in_progress, completed, failed, canceled,\n"
    "total), for one queue (default: every queue), one user or one batch.\n";

static const char cancel_help[] =
    "usage: gen queue cancel [--db PATH] (ID... | --batch B... | --destination D | --all)\n"
    "                        [--user U] [--queue Q] [--json]\n"
    "\n"
    "Cancel matching pending AND in-progress items (a worker running one stops it\n"
    "within a step). Prints how many items changed; finished items are left as\n"
    "they are. The CLI acts for every user; --user U narrows to U's items and\n"
    "refuses (exit 1) an item id of another user.\n";

static const char retry_help[] =
    "usage: gen queue retry [--db PATH] ID... [--user U] [--json]\n"
    "\n"
    "Enqueue failed or canceled items again as new pending items (same job,\n"
    "batch, user, priority); other items are skipped. Prints the new ids.\n";

static const char prune_help[] =
    "usage: gen queue prune [--db PATH] [--queue Q] [--user U] [--json]\n"
    "\n"
    "Delete finished items (completed, failed, canceled) of the queue.\n";

/* Options most queue subcommands share. */
typedef struct common {
    const char *db, *queue_id, *user;
    bool json;
} common;

static bool common_arg(cli_args *a, common *c)
{
    return cli_opt(a, "--db", &c->db) || cli_opt(a, "--queue", &c->queue_id) ||
           cli_opt(a, "--user", &c->user) || cli_flag_to(a, "--json", &c->json);
}

static void print_ids(FILE *out, const gen_queue_enqueued *r)
{
    fputc('[', out);
    for (size_t i = 0; i < gen_queue_enqueued_count(r); i++)
        fprintf(out, "%s%lld", i ? "," : "", (long long)gen_queue_enqueued_item_id(r, i));
    fputc(']', out);
}

/* --- add --------------------------------------------------------------------------------- */

static int queue_add(cli_env *env)
{
    common c = {0};
    cli_job_args job_args = {0};
    gen_queue_batch batch = GEN_QUEUE_BATCH_INIT;
    const char *v = NULL;
    int64_t n = 0;
    bool no_model_check = false;
    cli_args a;
    cli_args_init(&a, "queue add", env->argc, env->argv, 2);
    while (cli_args_more(&a)) {
        if (cli_help(&a)) {
            fputs(add_help_head, stdout);
            fputs(cli_job_help, stdout);
            return EXIT_OK;
        } else if (common_arg(&a, &c) || cli_job_arg(&a, &job_args)) {
        } else if (cli_opt(&a, "--runs", &v)) {
            if (v && cli_parse_i64(&a, "--runs", v, 1, 100000, &n))
                batch.runs = (uint32_t)n;
        } else if (cli_opt(&a, "--priority", &v)) {
            if (v && cli_parse_i64(&a, "--priority", v, INT32_MIN, INT32_MAX, &n))
                batch.priority = (int32_t)n;
        } else if (cli_flag(&a, "--prepend")) {
            batch.prepend = 1;
        } else if (cli_flag_to(&a, "--no-model-check", &no_model_check)) {
        } else if (cli_opt(&a, "--destination", &v)) {
            batch.destination = v;
        } else if (cli_opt(&a, "--origin", &v)) {
            batch.origin = v;
        } else if (cli_opt(&a, "--batch", &v)) {
            batch.batch_id = v;
        } else {
            cli_unknown(&a);
        }
    }
    if (a.error)
        return EXIT_USAGE;
    const char *path = cli_db_path(env, c.db, "queue add");
    if (!path)
        return EXIT_USAGE;
    gen_job *job = NULL;
    int rc = cli_job_build(&job_args, "queue add", &job);
    if (rc != EXIT_OK)
        return rc;
    /* A wrong model path is caught now rather than when a worker runs it. */
    char model[GEN_PATH_TEXT_MAX];
    gen_model_info *info = NULL;
    if (!no_model_check && gen_job_get(job, "model", model, sizeof(model)) == GEN_OK &&
        gen_model_inspect(&info, model) != GEN_OK) {
        fprintf(stderr, "gen queue add: model \"%s\": %s (--no-model-check enqueues anyway)\n",
                model, gen_last_error_message());
        gen_job_destroy(job);
        return EXIT_RUNTIME;
    }
    gen_model_info_destroy(info);
    size_t needed = 0;
    gen_job_to_json(job, NULL, 0, &needed);
    char *json = malloc(needed ? needed : 1);
    gen_status st = json ? gen_job_to_json(job, json, needed, NULL) : GEN_ENOMEM;
    gen_job_destroy(job);
    if (st != GEN_OK) {
        free(json);
        return cli_fail("cannot write the job as JSON");
    }
    gen_queue *q = NULL;
    rc = cli_open_queue(env, path, false, &q);
    if (rc != EXIT_OK) {
        free(json);
        return rc;
    }
    batch.job = json;
    batch.queue_id = c.queue_id;
    batch.user_id = c.user;
    gen_queue_enqueued *r = NULL;
    st = gen_queue_enqueue(&r, q, &batch);
    free(json);
    if (st != GEN_OK) {
        /* The queue's own job checks (e.g. the seed range) are input errors too. */
        rc = st == GEN_EINVAL || st == GEN_EFORMAT ? cli_fail_input("queue add", GEN_EINVAL)
                                                   : cli_fail("queue add");
        gen_queue_close(q);
        return rc;
    }
    size_t count = gen_queue_enqueued_count(r), requested = gen_queue_enqueued_requested(r);
    if (c.json) {
        printf("{\"batch_id\":");
        json_put_string(stdout, gen_queue_enqueued_batch_id(r));
        printf(",\"requested\":%zu,\"item_ids\":", requested);
        print_ids(stdout, r);
        printf("}\n");
    } else {
        printf("enqueued %zu item%s (", count, count == 1 ? "" : "s");
        print_ids(stdout, r);
        printf(") in batch %s\n", gen_queue_enqueued_batch_id(r));
    }
    if (count < requested)
        fprintf(stderr, "gen queue add: the queue is nearly full: %zu of %zu runs enqueued\n",
                count, requested);
    gen_queue_enqueued_destroy(r);
    gen_queue_close(q);
    return EXIT_OK;
}

/* --- list -------------------------------------------------------------------------------- */

static int status_from_name(const char *name)
{
    for (int s = GEN_QUEUE_PENDING; s <= GEN_QUEUE_CANCELED; s++)
        if (strcmp(name, gen_queue_status_name(s)) == 0)
            return s;
    return -1;
}

/* The prompt of a job JSON, for the table; "" when there is none. */
static void job_prompt(const char *job_json, char *buf, size_t size)
{
    buf[0] = '\0';
    json_t *root = job_json ? json_loads(job_json, 0, NULL) : NULL;
    json_t *p = root ? json_object_get(root, "prompt") : NULL;
    if (json_is_string(p))
        snprintf(buf, size, "%s", json_string_value(p));
    json_decref(root);
    for (char *c = buf; *c; c++)
        if ((unsigned char)*c < 0x20)
            *c = ' ';
}

static void put_field_s(const char *name, const char *value)
{
    printf(",\"%s\":", name);
    json_put_string(stdout, value);
}

static void item_json(const gen_queue_item *it)
{
    printf("{\"id\":%lld,\"status\":\"%s\"", (long long)gen_queue_item_id(it),
           gen_queue_status_name(gen_queue_item_status(it)));
    put_field_s("queue_id", gen_queue_item_queue_id(it));
    put_field_s("batch_id", gen_queue_item_batch_id(it));
    put_field_s("user_id", gen_queue_item_user_id(it));
    put_field_s("model", gen_queue_item_model(it));
    printf(",\"priority\":%d", gen_queue_item_priority(it));
    put_field_s("origin", gen_queue_item_origin(it));
    put_field_s("destination", gen_queue_item_destination(it));
    put_field_s("device", gen_queue_item_device(it));
    put_field_s("error_type", gen_queue_item_error_type(it));
    put_field_s("error_message", gen_queue_item_error_message(it));
    printf(",\"attempts\":%d,\"retried_from\":%lld,\"created_at\":%lld,\"updated_at\":%lld,"
           "\"started_at\":%lld,\"completed_at\":%lld",
           gen_queue_item_attempts(it), (long long)gen_queue_item_retried_from(it),
           (long long)gen_queue_item_created_at(it), (long long)gen_queue_item_updated_at(it),
           (long long)gen_queue_item_started_at(it), (long long)gen_queue_item_completed_at(it));
    /* The job as an object when it parses (it always does for items libgen
     * wrote); as a string otherwise, so the output stays valid JSON. */
    printf(",\"job\":");
    const char *job = gen_queue_item_job(it);
    json_t *root = job ? json_loads(job, 0, NULL) : NULL;
    char *compact = json_is_object(root) ? json_dumps(root, JSON_COMPACT) : NULL;
    if (compact)
        fputs(compact, stdout);
    else
        json_put_string(stdout, job);
    free(compact);
    json_decref(root);
    printf("}");
}

static void item_row(const gen_queue_item *it)
{
    char prompt[41];
    job_prompt(gen_queue_item_job(it), prompt, sizeof(prompt));
    const char *batch = gen_queue_item_batch_id(it);
    const char *device = gen_queue_item_device(it);
    printf("%6lld  %-11s  %-12.12s  %4d  %-8.8s  %-8.8s  %s\n", (long long)gen_queue_item_id(it),
           gen_queue_status_name(gen_queue_item_status(it)), gen_queue_item_user_id(it),
           gen_queue_item_priority(it), device ? device : "-", batch ? batch : "-", prompt);
}

static int queue_list(cli_env *env)
{
    common c = {0};
    gen_queue_filter filter = GEN_QUEUE_FILTER_INIT;
    bool all = false;
    const char *v = NULL;
    int64_t n = 0;
    cli_args a;
    cli_args_init(&a, "queue list", env->argc, env->argv, 2);
    while (cli_args_more(&a)) {
        if (cli_help(&a)) {
            fputs(list_help, stdout);
            return EXIT_OK;
        } else if (common_arg(&a, &c)) {
        } else if (cli_opt(&a, "--status", &v)) {
            if (v && (filter.status = status_from_name(v)) < 0) {
                cli_usage_error(a.cmd,
                                "unknown status \"%s\" (pending, in_progress, completed, "
                                "failed, canceled)",
                                v);
                a.error = true;
            }
        } else if (cli_opt(&a, "--batch", &v)) {
            filter.batch_id = v;
        } else if (cli_opt(&a, "--destination", &v)) {
            filter.destination = v;
        } else if (cli_opt(&a, "--after", &v)) {
            if (v && cli_parse_i64(&a, "--after", v, 0, INT64_MAX, &n))
                filter.after_item_id = n;
        } else if (cli_opt(&a, "--limit", &v)) {
            if (v && cli_parse_i64(&a, "--limit", v, 1, 10000, &n))
                filter.limit = (uint32_t)n;
        } else if (cli_flag(&a, "--desc")) {
            filter.descending = 1;
        } else if (cli_flag(&a, "--all")) {
            all = true;
        } else {
            cli_unknown(&a);
        }
    }
    if (a.error)
        return EXIT_USAGE;
    const char *path = cli_db_path(env, c.db, a.cmd);
    gen_queue *q = NULL;
    int rc = path ? cli_open_queue(env, path, true, &q) : EXIT_USAGE;
    if (rc != EXIT_OK)
        return rc;
    filter.queue_id = c.queue_id;
    filter.user_id = c.user;
    if (c.json)
        printf("[");
    else
        printf("%6s  %-11s  %-12s  %4s  %-8s  %-8s  %s\n", "ID", "STATUS", "USER", "PRIO", "DEVICE",
               "BATCH", "PROMPT");
    size_t shown = 0;
    for (;;) {
        gen_queue_item_list *list = NULL;
        if (gen_queue_list(&list, q, &filter) != GEN_OK) {
            if (c.json)
                printf("]\n");
            rc = cli_fail("queue list");
            break;
        }
        size_t count = gen_queue_item_list_count(list);
        for (size_t i = 0; i < count; i++) {
            const gen_queue_item *it = gen_queue_item_list_at(list, i);
            if (c.json) {
                if (shown)
                    printf(",");
                item_json(it);
            } else {
                item_row(it);
            }
            shown++;
            filter.after_item_id = gen_queue_item_id(it);
        }
        gen_queue_item_list_destroy(list);
        if (!all || count < filter.limit) {
            if (c.json)
                printf("]\n");
            break;
        }
    }
    gen_queue_close(q);
    return rc;
}

/* --- status ------------------------------------------------------------------------------ */

static int queue_status(cli_env *env)
{
    common c = {0};
    const char *batch = NULL;
    cli_args a;
    cli_args_init(&a, "queue status", env->argc, env->argv, 2);
    while (cli_args_more(&a)) {
        if (cli_help(&a)) {
            fputs(status_help, stdout);
            return EXIT_OK;
        } else if (common_arg(&a, &c) || cli_opt(&a, "--batch", &batch)) {
        } else {
            cli_unknown(&a);
        }
    }
    if (a.error)
        return EXIT_USAGE;
    if (batch && (c.queue_id || c.user))
        return cli_usage_error(a.cmd, "--batch cannot be combined with --queue or --user");
    const char *path = cli_db_path(env, c.db, a.cmd);
    gen_queue *q = NULL;
    int rc = path ? cli_open_queue(env, path, true, &q) : EXIT_USAGE;
    if (rc != EXIT_OK)
        return rc;
    gen_queue_counts k;
    memset(&k, 0, sizeof(k));
    k.version = GEN_QUEUE_COUNTS_VERSION;
    gen_status st = batch ? gen_queue_get_batch_counts(&k, q, batch)
                          : gen_queue_get_counts(&k, q, c.queue_id, c.user);
    if (st != GEN_OK) {
        rc = cli_fail("queue status");
    } else if (c.json) {
        printf("{\"pending\":%llu,\"in_progress\":%llu,\"completed\":%llu,\"failed\":%llu,"
               "\"canceled\":%llu,\"total\":%llu}\n",
               (unsigned long long)k.pending, (unsigned long long)k.in_progress,
               (unsigned long long)k.completed, (unsigned long long)k.failed,
               (unsigned long long)k.canceled, (unsigned long long)k.total);
    } else {
        printf("pending      %llu\nin_progress  %llu\ncompleted    %llu\nfailed       %llu\n"
               "canceled     %llu\ntotal        %llu\n",
               (unsigned long long)k.pending, (unsigned long long)k.in_progress,
               (unsigned long long)k.completed, (unsigned long long)k.failed,
               (unsigned long long)k.canceled, (unsigned long long)k.total);
    }
    gen_queue_close(q);
    return rc;
}

/* --- cancel / retry / prune --------------------------------------------------------------- */

/* Parse the positional item ids. */
static bool take_id(cli_args *a, int64_t *ids, size_t *count)
{
    const char *v = NULL;
    if (!cli_positional(a, &v))
        return false;
    int64_t id = 0;
    if (*count >= MAX_IDS) {
        cli_usage_error(a->cmd, "too many item ids (at most %d)", MAX_IDS);
        a->error = true;
    } else if (cli_parse_i64(a, "an item id", v, 1, INT64_MAX, &id)) {
        ids[(*count)++] = id;
    }
    return true;
}

static void print_count(bool json, const char *key, const char *verb, uint64_t n)
{
    if (json)
        printf("{\"%s\":%llu}\n", key, (unsigned long long)n);
    else
        printf("%s %llu item%s\n", verb, (unsigned long long)n, n == 1 ? "" : "s");
}

static int queue_cancel(cli_env *env)
{
    common c = {0};
    static int64_t ids[MAX_IDS];
    const char *batches[64];
    size_t nids = 0, nbatches = 0;
    const char *destination = NULL, *v = NULL;
    bool all = false;
    cli_args a;
    cli_args_init(&a, "queue cancel", env->argc, env->argv, 2);
    while (cli_args_more(&a)) {
        if (cli_help(&a)) {
            fputs(cancel_help, stdout);
            return EXIT_OK;
        } else if (common_arg(&a, &c) || cli_opt(&a, "--destination", &destination) ||
                   cli_flag_to(&a, "--all", &all) || take_id(&a, ids, &nids)) {
        } else if (cli_opt(&a, "--batch", &v)) {
            if (nbatches < sizeof(batches) / sizeof(batches[0]))
                batches[nbatches++] = v;
            else {
                cli_usage_error(a.cmd, "too many --batch options (at most 64)");
                a.error = true;
            }
        } else {
            cli_unknown(&a);
        }
    }
    if (a.error)
        return EXIT_USAGE;
    int kinds = (nids > 0) + (nbatches > 0) + (destination != NULL) + all;
    if (kinds != 1)
        return cli_usage_error(a.cmd, "say what to cancel: item ids, --batch, --destination or "
                                      "--all (exactly one of them)");
    const char *path = cli_db_path(env, c.db, a.cmd);
    gen_queue *q = NULL;
    int rc = path ? cli_open_queue(env, path, true, &q) : EXIT_USAGE;
    if (rc != EXIT_OK)
        return rc;
    int admin = c.user == NULL;
    uint64_t total = 0, n = 0;
    gen_status st = GEN_OK;
    if (nids) {
        for (size_t i = 0; i < nids && st == GEN_OK; i++) {
            st = gen_queue_cancel_item(&n, q, ids[i], c.user, admin);
            total += st == GEN_OK ? n : 0;
        }
    } else if (nbatches) {
        st = gen_queue_cancel_by_batch(&total, q, c.queue_id, batches, nbatches, c.user, admin);
    } else if (destination) {
        st = gen_queue_cancel_by_destination(&total, q, c.queue_id, destination, c.user, admin);
    } else {
        st = gen_queue_cancel_by_queue(&total, q, c.queue_id, c.user, admin);
    }
    if (st != GEN_OK)
        rc = cli_fail("queue cancel");
    else
        print_count(c.json, "canceled", "canceled", total);
    gen_queue_close(q);
    return rc;
}

static int queue_retry(cli_env *env)
{
    common c = {0};
    static int64_t ids[MAX_IDS];
    size_t nids = 0;
    cli_args a;
    cli_args_init(&a, "queue retry", env->argc, env->argv, 2);
    while (cli_args_more(&a)) {
        if (cli_help(&a)) {
            fputs(retry_help, stdout);
            return EXIT_OK;
        } else if (common_arg(&a, &c) || take_id(&a, ids, &nids)) {
        } else {
            cli_unknown(&a);
        }
    }
    if (a.error)
        return EXIT_USAGE;
    if (nids == 0)
        return cli_usage_error(a.cmd, "give the ids of the items to retry");
    const char *path = cli_db_path(env, c.db, a.cmd);
    gen_queue *q = NULL;
    int rc = path ? cli_open_queue(env, path, true, &q) : EXIT_USAGE;
    if (rc != EXIT_OK)
        return rc;
    gen_queue_enqueued *r = NULL;
    if (gen_queue_retry(&r, q, ids, nids, c.user, c.user == NULL) != GEN_OK) {
        rc = cli_fail("queue retry");
    } else if (c.json) {
        printf("{\"item_ids\":");
        print_ids(stdout, r);
        printf("}\n");
    } else {
        size_t count = gen_queue_enqueued_count(r);
        printf("retried %zu item%s as ", count, count == 1 ? "" : "s");
        print_ids(stdout, r);
        printf("\n");
    }
    gen_queue_enqueued_destroy(r);
    gen_queue_close(q);
    return rc;
}

static int queue_prune(cli_env *env)
{
    common c = {0};
    cli_args a;
    cli_args_init(&a, "queue prune", env->argc, env->argv, 2);
    while (cli_args_more(&a)) {
        if (cli_help(&a)) {
            fputs(prune_help, stdout);
            return EXIT_OK;
        } else if (!common_arg(&a, &c)) {
            cli_unknown(&a);
        }
    }
    if (a.error)
        return EXIT_USAGE;
    const char *path = cli_db_path(env, c.db, a.cmd);
    gen_queue *q = NULL;
    int rc = path ? cli_open_queue(env, path, true, &q) : EXIT_USAGE;
    if (rc != EXIT_OK)
        return rc;
    uint64_t n = 0;
    if (gen_queue_prune(&n, q, c.queue_id, c.user, c.user == NULL) != GEN_OK)
        rc = cli_fail("queue prune");
    else
        print_count(c.json, "deleted", "deleted", n);
    gen_queue_close(q);
    return rc;
}

int cmd_queue(cli_env *env)
{
    static const struct {
        const char *name;
        int (*run)(cli_env *);
    } subs[] = {
        {"add", queue_add},       {"list", queue_list},   {"status", queue_status},
        {"cancel", queue_cancel}, {"retry", queue_retry}, {"prune", queue_prune},
    };
    if (env->argc < 2) {
        fputs(queue_help, stderr);
        return EXIT_USAGE;
    }
    const char *sub = env->argv[1];
    if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
        fputs(queue_help, stdout);
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
        if (strcmp(sub, subs[i].name) == 0)
            return subs[i].run(env);
    fprintf(stderr, "gen queue: unknown subcommand \"%s\" (try `gen queue --help`)\n", sub);
    return EXIT_USAGE;
}
