/* Crash points: named places where a crash test can make the process die with
 * SIGKILL, deterministically, instead of racing a kill -9 from outside (an
 * image half written, a migration before its COMMIT). Disarmed, which is
 * always the case outside tests, passing a point costs one atomic load. */
#ifndef GEN_CORE_CRASH_POINT_H
#define GEN_CORE_CRASH_POINT_H

/* Test hook: the `nth` pass (1 = the next) through the point called `name`
 * kills the process. name NULL disarms. Not thread-safe against passes in
 * flight: arm before starting the work. */
void gen__crash_point_arm(const char *name, unsigned nth);

/* Die here if this point is armed and its count is reached. */
void gen__crash_point(const char *name);

#endif
