/* CLIP tokenizer: ids equal transformers' CLIPTokenizer on the fixture prompts
 * (tests/fixtures/tokenizer, made by tools/make_tokenizer_fixtures.py), the
 * special-token and padding rules, malformed files, threads. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "fixture.h"
#include "pipeline/tokenizer.h"

/* ../shared/data beside the clone (CI), or two levels up for a git worktree,
 * or $GEN_SHARED_DATA. */
static char CLIP_DIR[1100];

static bool have_clip(void)
{
    const char *env = getenv("GEN_SHARED_DATA");
    const char *cands[3] = { env, GEN_SHARED_DATA_DIR, GEN_SHARED_DATA_DIR2 };
    for (int i = 0; i < 3; i++) {
        if (!cands[i])
            continue;
        char v[1200], m[1200];
        struct stat sb;
        snprintf(CLIP_DIR, sizeof CLIP_DIR, "%s/clip-vit-l-14-tokenizer", cands[i]);
        snprintf(v, sizeof v, "%s/vocab.json", CLIP_DIR);
        snprintf(m, sizeof m, "%s/merges.txt", CLIP_DIR);
        if (stat(v, &sb) == 0 && stat(m, &sb) == 0)
            return true;
    }
    return false;
}

/* Compare every fixture case; returns the number of mismatching cases. */
static int compare_cases(const gen__tokenizer *tok, json_t *cases, int *compared)
{
    int bad = 0;
    *compared = 0;
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *prompt = json_string_value(json_object_get(c, "prompt"));
        size_t plen = json_string_length(json_object_get(c, "prompt"));
        json_t *padded = json_object_get(c, "ids_padded");
        json_t *unpadded = json_object_get(c, "ids_unpadded");
        int32_t ids[77];
        bool trunc;
        assert_int_equal(gen__tokenizer_encode_padded(tok, prompt, plen, ids, 77, &trunc), GEN_OK);
        bool ok = json_array_size(padded) == 77;
        for (size_t k = 0; ok && k < 77; k++)
            ok = ids[k] == json_integer_value(json_array_get(padded, k));
        /* Unpadded: BOS + every token + EOS. */
        size_t cap = json_array_size(unpadded) + 8, n;
        int32_t *all = malloc(cap * sizeof *all);
        bool more;
        assert_int_equal(gen__tokenizer_encode(tok, prompt, plen, all, cap, &n, &more), GEN_OK);
        ok = ok && !more && n + 2 == json_array_size(unpadded);
        for (size_t k = 0; ok && k < n; k++)
            ok = all[k] == json_integer_value(json_array_get(unpadded, k + 1));
        ok = ok && trunc == (json_array_size(unpadded) > 77);
        if (!ok) {
            bad++;
            print_message("mismatch for prompt \"%s\"\n", prompt);
        }
        free(all);
        (*compared)++;
    }
    return bad;
}

static void run_fixture(const char *dir, const char *fixture)
{
    gen__tokenizer *tok = NULL;
    assert_int_equal(gen__tokenizer_load(&tok, dir), GEN_OK);
    char p[1024];
    json_t *root = json_load_file(fixture_path(p, sizeof p, fixture), JSON_ALLOW_NUL, NULL);
    assert_non_null(root);
    json_t *info = json_object_get(root, "info");
    assert_int_equal(gen__tokenizer_bos(tok), json_integer_value(json_object_get(info, "bos")));
    assert_int_equal(gen__tokenizer_eos(tok), json_integer_value(json_object_get(info, "eos")));
    assert_int_equal(gen__tokenizer_pad(tok), json_integer_value(json_object_get(info, "pad")));
    assert_int_equal(gen__tokenizer_vocab_size(tok),
                     json_integer_value(json_object_get(info, "vocab_size")));
    int compared;
    int bad = compare_cases(tok, json_object_get(root, "cases"), &compared);
    print_message("%s: %d prompts compared, %d mismatches\n", fixture, compared, bad);
    assert_true(compared >= 50);
    assert_int_equal(bad, 0);
    json_decref(root);
    gen__tokenizer_destroy(tok);
}

static void test_full_clip_vocab(void **state)
{
    (void)state;
    if (!have_clip()) {
        print_message("skipped: %s absent\n", CLIP_DIR);
        skip();
    }
    run_fixture(CLIP_DIR, "tokenizer/clip_ids.json");
}

/* 400 random prompts (tools/make_tokenizer_random_fixture.py): every kind of
 * whitespace, combining marks, jamo, controls, special tokens, astral planes. */
static void test_random_prompts(void **state)
{
    (void)state;
    if (!have_clip())
        skip();
    run_fixture(CLIP_DIR, "tokenizer/random_ids.json");
}

static void test_tiny_vocab(void **state)
{
    (void)state;
    char dir[1024];
    run_fixture(fixture_path(dir, sizeof dir, "tiny-sd15/tokenizer"), "tokenizer/tiny_ids.json");
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static char *copy_file(const char *from, const char *to)
{
    size_t len;
    char *data = fixture_read_file(from, &len);
    assert_non_null(data);
    FILE *fp = fopen(to, "wb");
    assert_non_null(fp);
    fwrite(data, 1, len, fp);
    fclose(fp);
    return data;
}

/* SD2's tokenizer pads with "!" (id 0), a special token that is also
 * matched in the prompt (ids from transformers with pad_token="!"). */
static void test_sd2_pad_token(void **state)
{
    (void)state;
    if (!have_clip())
        skip();
    char dir[] = "/tmp/gen_tok_sd2_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char p[1200];
    char src[1200];
    snprintf(p, sizeof p, "%s/vocab.json", dir);
    snprintf(src, sizeof src, "%s/vocab.json", CLIP_DIR);
    free(copy_file(src, p));
    snprintf(p, sizeof p, "%s/merges.txt", dir);
    snprintf(src, sizeof src, "%s/merges.txt", CLIP_DIR);
    free(copy_file(src, p));
    snprintf(p, sizeof p, "%s/special_tokens_map.json", dir);
    write_file(p, "{\"pad_token\": \"!\"}");
    gen__tokenizer *tok;
    assert_int_equal(gen__tokenizer_load(&tok, dir), GEN_OK);
    assert_int_equal(gen__tokenizer_pad(tok), 0);
    int32_t ids[10];
    assert_int_equal(gen__tokenizer_encode_padded(tok, "a", strlen("a"), ids, 10, NULL), GEN_OK);
    const int32_t want[10] = { 49406, 320, 49407, 0, 0, 0, 0, 0, 0, 0 };
    assert_memory_equal(ids, want, sizeof want);
    assert_int_equal(gen__tokenizer_encode_padded(tok, "hello!", strlen("hello!"), ids, 4, NULL), GEN_OK);
    const int32_t want2[4] = { 49406, 3306, 0, 49407 };
    assert_memory_equal(ids, want2, sizeof want2);
    gen__tokenizer_destroy(tok);
    snprintf(p, sizeof p, "rm -rf '%s'", dir);
    assert_int_equal(system(p), 0);
}

/* Uppercase special tokens are not special unless the config says "normalized"
 * (ids from transformers on the tiny model, whose bos is normalized). */
static void test_normalized_specials(void **state)
{
    (void)state;
    char dir[1024];
    gen__tokenizer *tok;
    assert_int_equal(gen__tokenizer_load(&tok, fixture_path(dir, sizeof dir, "tiny-sd15/tokenizer")),
                     GEN_OK);
    int32_t ids[32];
    size_t n;
    const char *a = "a <|ENDOFTEXT|> b";
    assert_int_equal(gen__tokenizer_encode(tok, a, strlen(a), ids, 32, &n, NULL), GEN_OK);
    const int32_t want_a[] = { 320, 27, 347, 524, 639, 69, 600, 87, 339, 91, 285, 321 };
    assert_int_equal(n, sizeof want_a / sizeof want_a[0]);
    assert_memory_equal(ids, want_a, sizeof want_a);
    const char *b = "x <|STARTOFTEXT|>";
    assert_int_equal(gen__tokenizer_encode(tok, b, strlen(b), ids, 32, &n, NULL), GEN_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 343);
    assert_int_equal(ids[1], 1012);
    gen__tokenizer_destroy(tok);
}

static void test_truncation_flag(void **state)
{
    (void)state;
    char dir[1024];
    gen__tokenizer *tok;
    assert_int_equal(gen__tokenizer_load(&tok, fixture_path(dir, sizeof dir, "tiny-sd15/tokenizer")),
                     GEN_OK);
    assert_int_equal(gen__tokenizer_max_length(tok), 77);
    char text[4000] = "";
    for (int i = 0; i < 74; i++)
        strcat(text, "a ");
    int32_t ids[77];
    bool trunc = true;
    assert_int_equal(gen__tokenizer_encode_padded(tok, text, strlen(text), ids, 77, &trunc), GEN_OK);
    assert_false(trunc);
    strcat(text, "b ");   /* 75 tokens: still fits */
    assert_int_equal(gen__tokenizer_encode_padded(tok, text, strlen(text), ids, 77, &trunc), GEN_OK);
    assert_false(trunc);
    assert_int_equal(ids[76], gen__tokenizer_eos(tok));
    strcat(text, "c");    /* 76: the last one is dropped */
    assert_int_equal(gen__tokenizer_encode_padded(tok, text, strlen(text), ids, 77, &trunc), GEN_OK);
    assert_true(trunc);
    assert_int_equal(ids[76], gen__tokenizer_eos(tok));
    /* Invalid UTF-8 is refused. */
    assert_int_equal(gen__tokenizer_encode_padded(tok, "bad \xff byte", strlen("bad \xff byte"), ids, 77, NULL), GEN_EINVAL);
    assert_int_equal(gen__tokenizer_encode_padded(tok, "\xe2\x82", strlen("\xe2\x82"), ids, 77, NULL), GEN_EINVAL);
    gen__tokenizer_destroy(tok);
}

static void expect_load_error(const char *vocab, const char *merges, const char *config,
                              gen_status want, const char *needle)
{
    gen__tokenizer *tok = (gen__tokenizer *)1;
    gen_status st = gen__tokenizer_load_buffers(&tok, vocab, strlen(vocab), merges, strlen(merges),
                                                config, config ? strlen(config) : 0, "v.json", "m.txt");
    assert_int_equal(st, want);
    assert_null(tok);
    if (!strstr(gen_last_error_message(), needle))
        fail_msg("message \"%s\" lacks \"%s\"", gen_last_error_message(), needle);
}

static void test_malformed_files(void **state)
{
    (void)state;
    const char *v = "{\"a\": 0, \"b\": 1, \"ab\": 2, \"<|startoftext|>\": 3, \"<|endoftext|>\": 4}";
    expect_load_error("{\"a\": 0,\n \"b\": }", "", NULL, GEN_EFORMAT, "v.json: line 2");
    expect_load_error("[1, 2]", "", NULL, GEN_EFORMAT, "v.json: expected a JSON object");
    expect_load_error("{\"a\": \"x\"}", "", NULL, GEN_EFORMAT, "token \"a\" has no valid id");
    expect_load_error("{\"a\": -3}", "", NULL, GEN_EFORMAT, "no valid id");
    expect_load_error("{}", "", NULL, GEN_EFORMAT, "empty");
    expect_load_error(v, "#version: 0.2\na b\nab\n", NULL, GEN_EFORMAT, "m.txt: line 3");
    expect_load_error(v, "a  b\n", NULL, GEN_EFORMAT, "m.txt: line 1");
    expect_load_error(v, "a c\n", NULL, GEN_EFORMAT, "line 1: token \"c\" is not in the vocabulary");
    expect_load_error(v, "b a\n", NULL, GEN_EFORMAT, "merged token \"ba\"");
    expect_load_error("{\"a\": 0}", "", NULL, GEN_EFORMAT, "bos_token");
    expect_load_error(v, "", "{\"pad_token\": 5}", GEN_EFORMAT, "pad_token");
    expect_load_error(v, "", "{\"pad_token\": \"zz\"}", GEN_EFORMAT, "pad_token \"zz\" is not");
    expect_load_error(v, "", "{\"model_max_length\": 1e30}", GEN_EFORMAT, "model_max_length");
    expect_load_error(v, "", "not json", GEN_EFORMAT, "tokenizer_config.json: line 1");
    /* A good one: bytes missing from the vocabulary become the unknown token. */
    gen__tokenizer *tok;
    assert_int_equal(gen__tokenizer_load_buffers(&tok, v, strlen(v), "#version: 0.2\r\na b\r\n", 20,
                                                 NULL, 0, NULL, NULL), GEN_OK);
    int32_t ids[8];
    size_t n;
    assert_int_equal(gen__tokenizer_encode(tok, "ab", 2, ids, 8, &n, NULL), GEN_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 0);
    assert_int_equal(ids[1], 4); /* "b</w>" missing -> unk, so no merge applies */
    gen__tokenizer_destroy(tok);

    tok = (gen__tokenizer *)1;
    assert_int_equal(gen__tokenizer_load(&tok, "/nonexistent/tokenizer"), GEN_ENOTFOUND);
    assert_null(tok);
    assert_non_null(strstr(gen_last_error_message(), "/nonexistent/tokenizer/vocab.json"));
}

struct thread_arg {
    const gen__tokenizer *tok;
    json_t *cases;
    int bad;
};

static void *thread_main(void *p)
{
    struct thread_arg *a = p;
    for (int round = 0; round < 5; round++) {
        size_t i;
        json_t *c;
        json_array_foreach(a->cases, i, c) {
            int32_t ids[77];
            json_t *want = json_object_get(c, "ids_padded");
            json_t *pr = json_object_get(c, "prompt");
            if (gen__tokenizer_encode_padded(a->tok, json_string_value(pr), json_string_length(pr),
                                             ids, 77, NULL) != GEN_OK) {
                a->bad++;
                continue;
            }
            for (size_t k = 0; k < 77; k++)
                if (ids[k] != json_integer_value(json_array_get(want, k))) {
                    a->bad++;
                    break;
                }
        }
    }
    return NULL;
}

/* One tokenizer, four threads, shared word cache. */
static void test_threads(void **state)
{
    (void)state;
    char dir[1024], p[1024];
    gen__tokenizer *tok;
    assert_int_equal(gen__tokenizer_load(&tok, fixture_path(dir, sizeof dir, "tiny-sd15/tokenizer")),
                     GEN_OK);
    json_t *root = json_load_file(fixture_path(p, sizeof p, "tokenizer/tiny_ids.json"), 0, NULL);
    assert_non_null(root);
    pthread_t th[4];
    struct thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct thread_arg){ tok, json_object_get(root, "cases"), 0 };
        assert_int_equal(pthread_create(&th[i], NULL, thread_main, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].bad, 0);
    }
    json_decref(root);
    gen__tokenizer_destroy(tok);
}

/* Every allocation of load + encode may fail: a clean error, never a crash. */
static void test_alloc_failures(void **state)
{
    (void)state;
    char dir[1024];
    for (long k = 1;; k++) {
        gen__alloc_fail_after(k, 1);
        gen__tokenizer *tok = NULL;
        gen_status st = gen__tokenizer_load(&tok, fixture_path(dir, sizeof dir, "tiny-sd15/tokenizer"));
        int32_t ids[77];
        if (st == GEN_OK)
            st = gen__tokenizer_encode_padded(tok, "Caf\xc3\xa9 \xf0\x9f\x98\x80 photo", strlen("Caf\xc3\xa9 \xf0\x9f\x98\x80 photo"), ids, 77, NULL);
        long made = gen__alloc_fail_after(0, 0);
        gen__tokenizer_destroy(tok);
        if (st == GEN_OK && made < k)
            break;
        assert_int_equal(st, GEN_ENOMEM);
        assert_true(k < 10000);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_clip_vocab),
        cmocka_unit_test(test_random_prompts),
        cmocka_unit_test(test_tiny_vocab),
        cmocka_unit_test(test_sd2_pad_token),
        cmocka_unit_test(test_normalized_specials),
        cmocka_unit_test(test_truncation_flag),
        cmocka_unit_test(test_malformed_files),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
