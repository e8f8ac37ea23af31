/* Leases and recovery. Every handle keeps a row in queue_owners whose
 * lease_until it pushes forward (heartbeat). An in-progress item whose owner
 * row is gone, whose lease ran out, or whose process no longer exists on this
 * host was left by a dead worker: it goes back to pending with attempts + 1,
 * or to failed once max_attempts is reached. Items of live owners are never
 * touched. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/time.h"
#include "queue/queue_internal.h"

void gen__queue_random_hex(char *buf, size_t bytes)
{
    unsigned char raw[64];
    if (bytes > sizeof(raw))
        bytes = sizeof(raw);
    size_t got = 0;
    while (got < bytes) {
        ssize_t n = getrandom(raw + got, bytes - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got < bytes) { /* no entropy source: time and pid still make it unique enough */
        uint64_t x = (uint64_t)gen__monotonic_ns() ^ ((uint64_t)getpid() << 32) ^
                     (uint64_t)gen__wall_ms();
        for (size_t i = got; i < bytes; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            raw[i] = (unsigned char)(x >> 56);
        }
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < bytes; i++) {
        buf[2 * i] = hex[raw[i] >> 4];
        buf[2 * i + 1] = hex[raw[i] & 15];
    }
    buf[2 * bytes] = '\0';
}

void gen__queue_host_key(char *buf, size_t size)
{
    char host[256] = "unknown";
    if (gethostname(host, sizeof(host) - 1) != 0)
        strcpy(host, "unknown");
    host[sizeof(host) - 1] = '\0';
    /* Containers may share a host name but not a pid namespace. */
    struct stat ns;
    unsigned long long ino = stat("/proc/self/ns/pid", &ns) == 0 ? (unsigned long long)ns.st_ino
                                                                  : 0;
    snprintf(buf, size, "%s/pidns:%llu", host, ino);
}

/* Start time of `pid` (clock ticks since boot, field 22 of /proc/pid/stat);
 * 0 = unknown. *state gets the process state letter ('?' if unknown).
 * Returns false when the process certainly does not exist. */
static bool proc_info(long long pid, unsigned long long *start, char *state)
{
    *start = 0;
    *state = '?';
    if (pid <= 0)
        return false;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%lld/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f) {
        if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
            return false;
        return true; /* no /proc, or not ours to read: assume alive */
    }
    char line[1024];
    size_t n = fread(line, 1, sizeof(line) - 1, f);
    fclose(f);
    line[n] = '\0';
    const char *p = strrchr(line, ')'); /* the command name may hold spaces */
    if (!p)
        return true;
    p++;
    char st = '?';
    unsigned long long value = 0;
    int field = 2;
    for (const char *c = p; *c; c++) {
        if (*c == ' ') {
            field++;
            if (field == 3)
                st = c[1];
            if (field == 22) {
                value = strtoull(c + 1, NULL, 10);
                break;
            }
        }
    }
    *start = value;
    *state = st;
    return true;
}

static unsigned long long self_start(void)
{
    unsigned long long start;
    char state;
    proc_info(getpid(), &start, &state);
    return start;
}

gen_status gen__queue_lease_renew(gen_queue *q)
{
    int64_t now = gen__wall_ms();
    sqlite3_stmt *st;
    gen_status s = gen__queue_stmt(
        q, "UPDATE queue_owners SET lease_until = ? WHERE owner = ?", &st);
    if (s != GEN_OK)
        return s;
    sqlite3_bind_int64(st, 1, now + q->opts.lease_ms);
    sqlite3_bind_text(st, 2, q->owner, -1, SQLITE_STATIC);
    if ((s = gen__queue_step_done(q, st, "renewing the lease")) != GEN_OK)
        return s;
    if (sqlite3_changes(q->db) > 0)
        return GEN_OK;
    s = gen__queue_stmt(q,
                        "INSERT INTO queue_owners(owner, pid, host, proc_start, opened_at, "
                        "lease_until) VALUES (?, ?, ?, ?, ?, ?)",
                        &st);
    if (s != GEN_OK)
        return s;
    sqlite3_bind_text(st, 1, q->owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)getpid());
    sqlite3_bind_text(st, 3, q->host, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)self_start());
    sqlite3_bind_int64(st, 5, now);
    sqlite3_bind_int64(st, 6, now + q->opts.lease_ms);
    if ((s = gen__queue_step_done(q, st, "registering the lease")) != GEN_OK)
        return s;
    if (q->lease_registered)
        GEN__LOG_WARN(&q->logger,
                      "queue %s: this handle's lease had expired and was removed by another "
                      "process; items it had in progress may have been recovered",
                      q->path);
    q->lease_registered = true;
    return GEN_OK;
}

typedef struct dead_owner {
    char *owner;
    long long pid;
    char *host;
    bool lease_expired; /* else the process is gone */
} dead_owner;

typedef struct orphan {
    int64_t id;
    int32_t attempts;
    char *queue_id, *batch_id, *user_id, *device, *owner;
} orphan;

static bool owner_dead(gen_queue *q, int64_t now, long long pid, const char *host,
                       unsigned long long proc_start, int64_t lease_until, bool *expired)
{
    *expired = lease_until < now;
    if (*expired)
        return true;
    if (!host || strcmp(host, q->host) != 0)
        return false; /* another machine: only its lease tells */
    unsigned long long start;
    char state;
    if (!proc_info(pid, &start, &state))
        return true;
    if (state == 'Z' || state == 'X')
        return true; /* killed, not yet reaped */
    if (proc_start && start && proc_start != start)
        return true; /* the pid was reused by another process */
    return false;
}

static gen_status find_dead_owners(gen_queue *q, int64_t now, dead_owner **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    sqlite3_stmt *st;
    gen_status s = gen__queue_stmt(
        q, "SELECT owner, pid, host, proc_start, lease_until FROM queue_owners WHERE owner <> ?",
        &st);
    if (s != GEN_OK)
        return s;
    sqlite3_bind_text(st, 1, q->owner, -1, SQLITE_STATIC);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        long long pid = sqlite3_column_int64(st, 1);
        const char *host = (const char *)sqlite3_column_text(st, 2);
        bool expired = false;
        if (!owner_dead(q, now, pid, host, (unsigned long long)sqlite3_column_int64(st, 3),
                        sqlite3_column_int64(st, 4), &expired))
            continue;
        if (*count == cap) {
            cap = cap ? cap * 2 : 8;
            dead_owner *grown = gen__realloc(*out, cap * sizeof(*grown));
            if (!grown) {
                sqlite3_reset(st);
                return gen__error(GEN_ENOMEM, "queue %s: recovery: out of memory", q->path);
            }
            *out = grown;
        }
        bool ok = true;
        dead_owner d = {gen__queue_column_dup(st, 0, &ok), pid, gen__queue_column_dup(st, 2, &ok),
                        expired};
        (*out)[(*count)++] = d;
        if (!ok) {
            sqlite3_reset(st);
            return gen__error(GEN_ENOMEM, "queue %s: recovery: out of memory", q->path);
        }
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return gen__queue_db_error(q, rc, "reading leases");
    return GEN_OK;
}

static gen_status find_orphans(gen_queue *q, orphan **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    sqlite3_stmt *st;
    gen_status s = gen__queue_stmt(
        q,
        "SELECT item_id, attempts, queue_id, batch_id, user_id, device, owner FROM queue_items"
        " WHERE status = 'in_progress' AND (owner IS NULL OR owner NOT IN"
        " (SELECT owner FROM queue_owners)) ORDER BY item_id",
        &st);
    if (s != GEN_OK)
        return s;
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*count == cap) {
            cap = cap ? cap * 2 : 16;
            orphan *grown = gen__realloc(*out, cap * sizeof(*grown));
            if (!grown) {
                sqlite3_reset(st);
                return gen__error(GEN_ENOMEM, "queue %s: recovery: out of memory", q->path);
            }
            *out = grown;
        }
        bool ok = true;
        orphan o = {sqlite3_column_int64(st, 0),
                    sqlite3_column_int(st, 1),
                    gen__queue_column_dup(st, 2, &ok),
                    gen__queue_column_dup(st, 3, &ok),
                    gen__queue_column_dup(st, 4, &ok),
                    gen__queue_column_dup(st, 5, &ok),
                    gen__queue_column_dup(st, 6, &ok)};
        (*out)[(*count)++] = o;
        if (!ok) {
            sqlite3_reset(st);
            return gen__error(GEN_ENOMEM, "queue %s: recovery: out of memory", q->path);
        }
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return gen__queue_db_error(q, rc, "finding orphaned items");
    return GEN_OK;
}

static gen_status recover_item(gen_queue *q, const orphan *o, const dead_owner *dead,
                               size_t dead_count, int64_t now)
{
    const dead_owner *who = NULL;
    for (size_t i = 0; o->owner && i < dead_count; i++)
        if (dead[i].owner && strcmp(dead[i].owner, o->owner) == 0)
            who = &dead[i];
    int32_t attempts = o->attempts + 1;
    bool give_up = (uint32_t)attempts >= q->opts.max_attempts;
    char message[512];
    if (who)
        snprintf(message, sizeof(message),
                 "the worker running this item (pid %lld on %s) %s without finishing it "
                 "(attempt %d of at most %u)%s",
                 who->pid, who->host ? who->host : "?",
                 who->lease_expired ? "stopped renewing its lease" : "exited", (int)attempts,
                 (unsigned)q->opts.max_attempts, give_up ? "; retry limit reached" : "");
    else
        snprintf(message, sizeof(message),
                 "the worker running this item closed its queue or is gone (attempt %d of at "
                 "most %u)%s",
                 (int)attempts, (unsigned)q->opts.max_attempts,
                 give_up ? "; retry limit reached" : "");
    sqlite3_stmt *st;
    gen_status s;
    if (give_up) {
        s = gen__queue_stmt(q,
                            "UPDATE queue_items SET status = 'failed', attempts = ?, owner = NULL,"
                            " error_type = 'interrupted', error_message = ?, updated_at = ?,"
                            " completed_at = ?, status_seq = status_seq + 1"
                            " WHERE item_id = ? AND status = 'in_progress'",
                            &st);
        if (s != GEN_OK)
            return s;
        sqlite3_bind_int(st, 1, attempts);
        sqlite3_bind_text(st, 2, message, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now);
        sqlite3_bind_int64(st, 4, now);
        sqlite3_bind_int64(st, 5, o->id);
    } else {
        s = gen__queue_stmt(q,
                            "UPDATE queue_items SET status = 'pending', attempts = ?, owner = NULL,"
                            " error_type = 'interrupted', error_message = ?, updated_at = ?,"
                            " status_seq = status_seq + 1"
                            " WHERE item_id = ? AND status = 'in_progress'",
                            &st);
        if (s != GEN_OK)
            return s;
        sqlite3_bind_int(st, 1, attempts);
        sqlite3_bind_text(st, 2, message, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now);
        sqlite3_bind_int64(st, 4, o->id);
    }
    if ((s = gen__queue_step_done(q, st, "recovering an item")) != GEN_OK)
        return s;
    GEN__LOG_INFO(&q->logger, "queue %s: item %lld %s: %s", q->path, (long long)o->id,
                  give_up ? "failed" : "re-queued", message);
    return gen__queue_event_add(q, o->id, GEN_QUEUE_IN_PROGRESS,
                                give_up ? GEN_QUEUE_FAILED : GEN_QUEUE_PENDING, o->queue_id,
                                o->batch_id, o->user_id, o->device, message);
}

gen_status gen__queue_recover_locked(gen_queue *q, uint64_t *out)
{
    *out = 0;
    int64_t now = gen__wall_ms();
    dead_owner *dead = NULL;
    size_t dead_count = 0;
    orphan *orphans = NULL;
    size_t orphan_count = 0;
    gen_status s = find_dead_owners(q, now, &dead, &dead_count);
    for (size_t i = 0; s == GEN_OK && i < dead_count; i++) {
        sqlite3_stmt *st;
        s = gen__queue_stmt(q, "DELETE FROM queue_owners WHERE owner = ?", &st);
        if (s == GEN_OK) {
            sqlite3_bind_text(st, 1, dead[i].owner, -1, SQLITE_STATIC);
            s = gen__queue_step_done(q, st, "removing a dead lease");
        }
    }
    if (s == GEN_OK)
        s = find_orphans(q, &orphans, &orphan_count);
    for (size_t i = 0; s == GEN_OK && i < orphan_count; i++) {
        s = recover_item(q, &orphans[i], dead, dead_count, now);
        if (s == GEN_OK)
            (*out)++;
    }
    for (size_t i = 0; i < dead_count; i++) {
        gen__free(dead[i].owner);
        gen__free(dead[i].host);
    }
    gen__free(dead);
    for (size_t i = 0; i < orphan_count; i++) {
        gen__free(orphans[i].queue_id);
        gen__free(orphans[i].batch_id);
        gen__free(orphans[i].user_id);
        gen__free(orphans[i].device);
        gen__free(orphans[i].owner);
    }
    gen__free(orphans);
    return s;
}
