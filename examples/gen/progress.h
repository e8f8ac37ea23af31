/* The live display of `gen serve` (and later `gen generate`): one progress bar
 * per active session (an item running on a device) stacked at the bottom of a
 * terminal, redrawn in place with ANSI cursor movement at most ~10 times a
 * second; finished sessions disappear and their outcome is printed as a line
 * above the bars. When the output is not a terminal, plain lines instead
 * (start, each quarter of the denoising loop, outcome). Main thread only. */
#ifndef GEN_CLI_PROGRESS_H
#define GEN_CLI_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <gen/gen.h>

typedef struct progress progress;

progress *progress_new(FILE *out, bool tty);
/* Erases the bars (a terminal is left clean). NULL accepted. */
void progress_free(progress *p);

/* Take one event into account (does not draw on a terminal; lines are printed). */
void progress_event(progress *p, const gen_event *ev);
/* Redraw the bars if something changed and 100 ms have passed (or `force`). */
void progress_tick(progress *p, bool force);
/* Print a line above the bars. */
void progress_line(progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Sessions currently shown, and the item of the i-th. */
size_t progress_active(const progress *p);
int64_t progress_active_item(const progress *p, size_t index);
/* Forget a session whose end was not reported (an event was dropped). */
void progress_forget(progress *p, int64_t item_id, int32_t status);

/* Outcomes seen so far, for the summary. */
typedef struct progress_totals {
    uint64_t started, completed, failed, canceled, requeued;
} progress_totals;
progress_totals progress_get_totals(const progress *p);

#endif
