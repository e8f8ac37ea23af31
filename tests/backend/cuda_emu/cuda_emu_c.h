/* The CUDA kernel emulator (cuda_emu.h) as the C test driver sees it. */
#ifndef GEN_TESTS_CUDA_EMU_C_H
#define GEN_TESTS_CUDA_EMU_C_H

#ifdef __cplusplus
extern "C" {
#endif

/* Why the last failed launch failed ("" if none since the last clear). */
const char *gen_emu_last_failure(void);
void gen_emu_clear_failure(void);

/* Launch self-test kernel `which` (emu_selftest.cpp); returns the cudaError_t
 * value of the launch. */
int gen_emu_selftest(int which, float *out, const float *x);

#ifdef __cplusplus
}
#endif

#endif
