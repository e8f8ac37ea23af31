/* The CUDA kernel emulator (cuda_emu.h) as the C test driver sees it. */
#ifndef GEN_TESTS_CUDA_EMU_C_H
#define GEN_TESTS_CUDA_EMU_C_H

#ifdef __cplusplus
extern "C" {
#endif

/* Why the last failed launch failed ("" if none since the last clear). */
const char *gen_emu_last_failure(void);
void gen_emu_clear_failure(void);

/* How fibers are scheduled. 0 (default): all warps of a block advance
 * together from one synchronisation point to the next. 1 / -1: one warp at a
 * time, the lowest / highest with work first, running as far as it can alone
 * (its own warp collectives are released at once): a warp then overtakes the
 * others between barriers, which exposes a missing "tile consumed" barrier
 * that lockstep hides. */
void gen_emu_set_schedule(int schedule);

/* Launch self-test kernel `which` (emu_selftest.cpp); returns the cudaError_t
 * value of the launch. */
int gen_emu_selftest(int which, float *out, const float *x);

#ifdef __cplusplus
}
#endif

#endif
