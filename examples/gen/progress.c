/* Progress bars for active sessions; see progress.h. */
#include "progress.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli.h"

#define MAX_SESSIONS 64
#define REDRAW_NS 100000000LL /* 10 redraws a second at most */

typedef struct session {
    int64_t item;
    int32_t device;
    char label[64];
    char user[32];
    int32_t stage, step, total;
    int64_t started_ns;
    int64_t rate_ns;   /* time of the first denoising step seen (for it/s) */
    int32_t rate_step; /* that step */
    int quarter;       /* plain output: last quarter of the loop printed */
} session;

struct progress {
    FILE *out;
    bool tty;
    session s[MAX_SESSIONS];
    size_t n;
    int drawn; /* bar lines on the screen below the last line printed */
    bool dirty;
    int64_t last_draw_ns;
    progress_totals totals;
};

progress *progress_new(FILE *out, bool tty)
{
    progress *p = calloc(1, sizeof(*p));
    if (p) {
        p->out = out;
        p->tty = tty;
    }
    return p;
}

/* Move to the first bar line and clear everything below. */
static void erase(progress *p)
{
    if (p->drawn > 0)
        fprintf(p->out, "\033[%dA", p->drawn);
    if (p->drawn > 0)
        fputs("\r\033[J", p->out);
    p->drawn = 0;
}

void progress_free(progress *p)
{
    if (!p)
        return;
    if (p->tty) {
        erase(p);
        fflush(p->out);
    }
    free(p);
}

static int columns(const progress *p)
{
    struct winsize ws;
    if (ioctl(fileno(p->out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
        return ws.ws_col;
    return 80;
}

/* Clip to `width` bytes without splitting a UTF-8 sequence (a line that wraps
 * would break the cursor arithmetic). */
static void clip(char *line, size_t width)
{
    size_t len = strlen(line);
    if (len <= width)
        return;
    size_t cut = width;
    while (cut > 0 && ((unsigned char)line[cut] & 0xC0) == 0x80)
        cut--;
    line[cut] = '\0';
}

static double rate_of(const session *s, int64_t now)
{
    if (s->stage != GEN_STAGE_DENOISE || s->rate_ns == 0 || s->step <= s->rate_step)
        return 0.0;
    double secs = (double)(now - s->rate_ns) / 1e9;
    return secs > 0 ? (double)(s->step - s->rate_step) / secs : 0.0;
}

/* "CPU #1       item 12    alice    denoise [=====>    ]  10/20  2.13 it/s  ETA 0:05":
 * the bar takes the width the text leaves (8..40 cells). */
static void format_bar(const session *s, int64_t now, char *line, size_t size, int width)
{
    char head[128], tail[96];
    snprintf(head, sizeof(head), "%-12.12s item %-5lld %-8.8s %-7s ", s->label, (long long)s->item,
             s->user, gen_stage_name(s->stage));
    double rate = rate_of(s, now);
    int n = snprintf(tail, sizeof(tail), " %3d/%-3d", s->step, s->total);
    if (rate > 0 && n > 0) {
        int eta = (int)((double)(s->total - s->step) / rate + 0.5);
        snprintf(tail + n, sizeof(tail) - (size_t)n, "  %.2f it/s  ETA %d:%02d", rate, eta / 60,
                 eta % 60);
    }
    int cells = width - 1 - (int)strlen(head) - (int)strlen(tail) - 2;
    cells = cells < 8 ? 8 : cells > 40 ? 40 : cells;
    char bar[48];
    int filled = s->total > 0 ? (int)((int64_t)cells * s->step / s->total) : 0;
    bar[0] = '[';
    for (int i = 0; i < cells; i++)
        bar[1 + i] = i < filled ? '=' : (i == filled ? '>' : ' ');
    bar[cells + 1] = ']';
    bar[cells + 2] = '\0';
    snprintf(line, size, "%s%s%s", head, bar, tail);
    clip(line, (size_t)width - 1);
}

static void draw(progress *p, int64_t now)
{
    int width = columns(p);
    for (size_t i = 0; i < p->n; i++) {
        char line[512];
        format_bar(&p->s[i], now, line, sizeof(line), width);
        fprintf(p->out, "\r\033[2K%s\n", line);
    }
    p->drawn = (int)p->n;
    p->last_draw_ns = now;
    p->dirty = false;
}

void progress_tick(progress *p, bool force)
{
    if (!p->tty || (!p->dirty && !force))
        return;
    int64_t now = cli_now_ns();
    if (!force && now - p->last_draw_ns < REDRAW_NS)
        return;
    /* Overwrite in place: up to the first bar, redraw, clear what is left. */
    if (p->drawn > 0)
        fprintf(p->out, "\033[%dA", p->drawn);
    int old = p->drawn;
    draw(p, now);
    if (old > p->drawn)
        fputs("\r\033[J", p->out);
    fflush(p->out);
}

void progress_line(progress *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (p->tty)
        erase(p);
    vfprintf(p->out, fmt, ap);
    fputc('\n', p->out);
    va_end(ap);
    if (p->tty)
        draw(p, cli_now_ns());
    fflush(p->out);
}

static session *find(progress *p, int64_t item)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->s[i].item == item)
            return &p->s[i];
    return NULL;
}

static session *start(progress *p, const gen_event *ev)
{
    int64_t item = gen_event_item_id(ev);
    session *s = find(p, item);
    if (s || p->n >= MAX_SESSIONS)
        return s;
    s = &p->s[p->n++];
    memset(s, 0, sizeof(*s));
    s->item = item;
    s->device = gen_event_device_index(ev);
    const char *label = gen_event_device_label(ev);
    const char *user = gen_event_user_id(ev);
    snprintf(s->label, sizeof(s->label), "%s", label ? label : "?");
    snprintf(s->user, sizeof(s->user), "%s", user ? user : "");
    s->stage = GEN_STAGE_LOAD;
    s->started_ns = cli_now_ns();
    p->totals.started++;
    p->dirty = true;
    return s;
}

static void remove_session(progress *p, session *s)
{
    size_t i = (size_t)(s - p->s);
    memmove(&p->s[i], &p->s[i + 1], (p->n - i - 1) * sizeof(*s));
    p->n--;
    p->dirty = true;
}

static void finish(progress *p, int64_t item, int32_t status, const char *message)
{
    session *s = find(p, item);
    if (!s)
        return;
    double secs = (double)(cli_now_ns() - s->started_ns) / 1e9;
    char label[64];
    snprintf(label, sizeof(label), "%s", s->label);
    remove_session(p, s);
    switch (status) {
    case GEN_QUEUE_COMPLETED:
        p->totals.completed++;
        progress_line(p, "item %lld completed on %s in %.1f s", (long long)item, label, secs);
        break;
    case GEN_QUEUE_FAILED:
        p->totals.failed++;
        progress_line(p, "item %lld failed on %s: %s", (long long)item, label,
                      message && message[0] ? message : "(no message)");
        break;
    case GEN_QUEUE_CANCELED:
        p->totals.canceled++;
        progress_line(p, "item %lld canceled on %s after %.1f s", (long long)item, label, secs);
        break;
    default:
        p->totals.requeued++;
        progress_line(p, "item %lld stopped on %s and put back in the queue", (long long)item,
                      label);
        break;
    }
}

static void on_progress(progress *p, const gen_event *ev)
{
    session *s = start(p, ev);
    if (!s)
        return;
    int32_t stage = gen_event_stage(ev);
    if (stage != s->stage)
        s->quarter = 0;
    s->stage = stage;
    s->step = gen_event_step(ev);
    s->total = gen_event_total_steps(ev);
    if (stage == GEN_STAGE_DENOISE && s->rate_ns == 0) {
        s->rate_ns = cli_now_ns();
        s->rate_step = s->step;
    }
    p->dirty = true;
    if (!p->tty && stage == GEN_STAGE_DENOISE && s->total > 0) {
        int quarter = 4 * s->step / s->total;
        if (quarter > s->quarter || s->step == 1) {
            s->quarter = quarter;
            double rate = rate_of(s, cli_now_ns());
            char rate_text[32] = "";
            if (rate > 0)
                snprintf(rate_text, sizeof(rate_text), " (%.2f it/s)", rate);
            progress_line(p, "item %lld on %s: %s %d/%d%s", (long long)s->item, s->label,
                          gen_stage_name(stage), s->step, s->total, rate_text);
        }
    }
}

void progress_event(progress *p, const gen_event *ev)
{
    int64_t item = gen_event_item_id(ev);
    const char *label = gen_event_device_label(ev);
    switch (gen_event_type_of(ev)) {
    case GEN_EVENT_ITEM_STATUS: {
        int32_t status = gen_event_new_status(ev);
        if (status == GEN_QUEUE_IN_PROGRESS && gen_event_device_index(ev) >= 0) {
            if (!find(p, item) && start(p, ev))
                progress_line(p, "item %lld (%s) started on %s", (long long)item,
                              gen_event_user_id(ev) ? gen_event_user_id(ev) : "?",
                              label ? label : "?");
        } else if (status != GEN_QUEUE_IN_PROGRESS) {
            finish(p, item, status, gen_event_message(ev));
        }
        break;
    }
    case GEN_EVENT_PROGRESS: on_progress(p, ev); break;
    case GEN_EVENT_MODEL_LOAD:
        if (gen_event_model_loaded(ev))
            progress_line(p, "loaded %s on %s in %.1f s", gen_event_model_key(ev),
                          label ? label : "?", gen_event_seconds(ev));
        break;
    case GEN_EVENT_IMAGE_READY:
        progress_line(p, "item %lld: wrote %s (%dx%d)", (long long)item, gen_event_image_path(ev),
                      gen_event_image_width(ev), gen_event_image_height(ev));
        break;
    case GEN_EVENT_WORKER_ERROR:
        progress_line(p, "worker on %s stopped: %s", label ? label : "?", gen_event_message(ev));
        break;
    default: break;
    }
}

size_t progress_active(const progress *p)
{
    return p->n;
}

int64_t progress_active_item(const progress *p, size_t index)
{
    return index < p->n ? p->s[index].item : 0;
}

void progress_forget(progress *p, int64_t item_id, int32_t status)
{
    finish(p, item_id, status, NULL);
}

progress_totals progress_get_totals(const progress *p)
{
    return p->totals;
}
