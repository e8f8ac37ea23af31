/* Two CPU devices (cpu:0, cpu:1) computing at the same time on two threads
 * give bit-identical results to running one after the other, and stay within
 * their thread budgets (no extra threads appear while they compute). */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cblas.h>

#include <gen/gen.h>

#include "backend/backend.h"
#include "backend_test_util.h"

#define ROUNDS 3

/* A small UNet-like chain: conv3x3 -> group norm+SiLU -> to tokens ->
 * self-attention -> linear -> GEGLU -> back to NCHW -> upsample. */
typedef struct chain {
    gen__backend *be;
    uint64_t seed;
    float *result; /* host copy of the final tensor */
    size_t result_n;
    gen_status st;
} chain;

static gen_status run_chain(chain *c)
{
    gen__backend *be = c->be;
    int64_t n = 1, ch = 64, hw = 16, tok = hw * hw;
    int64_t xs[4] = {n, ch, hw, hw}, ws[4] = {ch, ch, 3, 3}, cs[1] = {ch};
    int64_t ls[2] = {2 * ch, ch}, lb[1] = {2 * ch}, ts[3] = {n, tok, ch}, gs[3] = {n, tok, 2 * ch};
    int64_t us[4] = {n, ch, 2 * hw, 2 * hw};
    float *hx = tu_random((size_t)(n * ch * hw * hw), c->seed);
    float *hw3 = tu_random((size_t)(ch * ch * 9), c->seed + 1);
    float *hg = tu_random((size_t)ch, c->seed + 2);
    float *hl = tu_random((size_t)(2 * ch * ch), c->seed + 3);
    gen__tensor x, w, gamma, lin, lbias, a, t, q, g, up, v;
    gen_status st = tu_tensor(&x, be, 4, xs, hx);
    st = st ? st : tu_tensor(&w, be, 4, ws, hw3);
    st = st ? st : tu_tensor(&gamma, be, 1, cs, hg);
    st = st ? st : tu_tensor(&lin, be, 2, ls, hl);
    st = st ? st : tu_tensor(&lbias, be, 1, lb, hl);
    st = st ? st : tu_tensor(&a, be, 4, xs, NULL);
    st = st ? st : tu_tensor(&t, be, 3, ts, NULL);
    st = st ? st : tu_tensor(&q, be, 3, ts, NULL);
    st = st ? st : tu_tensor(&g, be, 3, gs, NULL);
    st = st ? st : tu_tensor(&up, be, 4, us, NULL);
    gen__conv2d_params p = gen__conv2d_simple(1, 1);
    for (int r = 0; st == GEN_OK && r < ROUNDS; r++) {
        st = gen__conv2d(&a, &x, &w, &gamma, &p);
        st = st ? st : gen__group_norm(&a, &a, &gamma, &gamma, 8, 1e-6f, true);
        st = st ? st : gen__tensor_view3(&v, &a, n, ch, tok, 0);
        st = st ? st : gen__transpose(&t, &v);
        st = st ? st : gen__attention(&q, &t, &t, &t, 4, 0.25f, false);
        st = st ? st : gen__linear(&g, &q, &lin, &lbias);
        st = st ? st : gen__geglu(&t, &g);
        st = st ? st : gen__tensor_view3(&v, &x, n, ch, tok, 0);
        st = st ? st : gen__transpose(&v, &t);
        st = st ? st : gen__upsample_nearest2x(&up, &x);
    }
    if (st == GEN_OK) {
        c->result_n = (size_t)gen__tensor_numel(&up);
        c->result = tu_download(&up);
    }
    gen__tensor *all[] = {&x, &w, &gamma, &lin, &lbias, &a, &t, &q, &g, &up};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        gen__tensor_free(all[i]);
    free(hx), free(hw3), free(hg), free(hl);
    return st;
}

static void *chain_thread(void *p)
{
    chain *c = p;
    c->st = run_chain(c);
    return NULL;
}

static int count_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static void test_two_devices_match_sequential(void **state)
{
    (void)state;
    gen__backend *dev[2];
    int budget[2];
    for (int i = 0; i < 2; i++) {
        budget[i] = gen__cpu_thread_budget(i, 2);
        gen__cpu_backend_options o = {i, budget[i], 0};
        assert_int_equal(gen__cpu_backend_create(&dev[i], &o), GEN_OK);
    }
    /* BLAS is single-threaded inside our pools: the budget is the pool size */
    assert_int_equal(openblas_get_num_threads(), 1);

    chain seq[2] = {{dev[0], 100, NULL, 0, 0}, {dev[1], 200, NULL, 0, 0}};
    for (int i = 0; i < 2; i++)
        assert_int_equal(run_chain(&seq[i]), GEN_OK);

    int before = count_threads();
    chain par[2] = {{dev[0], 100, NULL, 0, 0}, {dev[1], 200, NULL, 0, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, chain_thread, &par[i]), 0);
    /* while both compute, only our two callers have been added */
    int during = count_threads();
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    if (before > 0)
        assert_true(during <= before + 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(par[i].st, GEN_OK);
        assert_int_equal(par[i].result_n, seq[i].result_n);
        assert_memory_equal(par[i].result, seq[i].result, seq[i].result_n * sizeof(float));
        free(par[i].result), free(seq[i].result);
        gen__backend_mem_info mi;
        gen__backend_memory(dev[i], &mi);
        assert_true(mi.peak_bytes > 0);
        gen__backend_destroy(dev[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_devices_match_sequential),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
