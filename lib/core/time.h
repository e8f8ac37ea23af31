/* Clocks: monotonic for durations and timeouts, wall clock for database rows. */
#ifndef GEN_CORE_TIME_H
#define GEN_CORE_TIME_H

#include <stdint.h>

int64_t gen__monotonic_ns(void);
int64_t gen__wall_ms(void); /* Unix epoch milliseconds */

#endif
