/* Crash points for the kill -9 tests (see crash_point.h). */
#include "core/crash_point.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char armed_name[64];
static atomic_uint armed_left; /* passes to go; 0 = disarmed */

void gen__crash_point_arm(const char *name, unsigned nth)
{
    atomic_store(&armed_left, 0);
    if (!name || nth == 0)
        return;
    snprintf(armed_name, sizeof armed_name, "%s", name);
    atomic_store_explicit(&armed_left, nth, memory_order_release);
}

void gen__crash_point(const char *name)
{
    unsigned left = atomic_load_explicit(&armed_left, memory_order_acquire); /* then armed_name */
    if (left == 0 || strcmp(name, armed_name) != 0)
        return;
    while (left > 0 && !atomic_compare_exchange_weak(&armed_left, &left, left - 1))
        ;
    if (left == 1) {
        /* What kill -9 does: no atexit handlers, no flushing, no unwinding. */
        kill(getpid(), SIGKILL);
        _exit(137); /* not reached */
    }
}
