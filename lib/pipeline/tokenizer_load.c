/* Loading a CLIP tokenizer: vocab.json, merges.txt and the special-token
 * settings of tokenizer_config.json / special_tokens_map.json. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/utf8.h"
#include "pipeline/tokenizer_internal.h"

#define DEFAULT_MAX_LENGTH 77
#define MAX_FILE_BYTES (64u << 20)

/* The GPT-2 byte-to-character table: printable bytes stand for themselves,
 * the others are moved to U+0100 onwards in byte order. */
static uint32_t byte_char(unsigned b)
{
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))
        return b;
    unsigned n = 0;
    for (unsigned c = 0; c < b; c++)
        if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255)))
            n++;
    return 256 + n;
}

static gen_status parse_vocab(gen__tokenizer *tok, const char *text, size_t len, const char *name)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!root)
        return gen__error(GEN_EFORMAT, "%s: line %d column %d: %s", name, jerr.line, jerr.column,
                          jerr.text);
    gen_status st = GEN_OK;
    if (!json_is_object(root)) {
        st = gen__error(GEN_EFORMAT, "%s: expected a JSON object of token -> id", name);
        goto done;
    }
    st = gen__strmap_init(&tok->vocab, json_object_size(root));
    const char *key;
    size_t key_len;
    json_t *value;
    void *iter = json_object_iter(root);
    while (st == GEN_OK && iter) {
        key = json_object_iter_key(iter);
        key_len = json_object_iter_key_len(iter);
        value = json_object_iter_value(iter);
        if (!json_is_integer(value) || json_integer_value(value) < 0 ||
            json_integer_value(value) >= INT32_MAX) {
            st = gen__error(GEN_EFORMAT, "%s: token \"%.*s\" has no valid id (need an integer in "
                            "[0, 2^31-1))", name, (int)(key_len > 64 ? 64 : key_len), key);
            break;
        }
        st = gen__strmap_put(&tok->vocab, key, key_len, (int32_t)json_integer_value(value));
        iter = json_object_iter_next(root, iter);
    }
    tok->vocab_size = json_object_size(root);
    if (st == GEN_OK && tok->vocab_size == 0)
        st = gen__error(GEN_EFORMAT, "%s: the vocabulary is empty", name);
done:
    json_decref(root);
    return st;
}

static gen_status merge_put(gen__tokenizer *tok, int32_t left, int32_t right, int32_t rank,
                            int32_t merged)
{
    uint64_t key = (((uint64_t)(uint32_t)left << 32) | (uint32_t)right) + 1;
    size_t mask = tok->merges_cap - 1;
    size_t i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & mask;
    while (tok->merges[i].key && tok->merges[i].key != key)
        i = (i + 1) & mask;
    if (!tok->merges[i].key)
        tok->n_merges++;
    /* A repeated pair takes its last rank, as the reference's dict does. */
    tok->merges[i] = (gen__merge_slot){ key, rank, merged };
    return GEN_OK;
}

int32_t gen__tok_merge_rank(const gen__tokenizer *tok, int32_t left, int32_t right, int32_t *merged)
{
    uint64_t key = (((uint64_t)(uint32_t)left << 32) | (uint32_t)right) + 1;
    size_t mask = tok->merges_cap - 1;
    size_t i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & mask;
    while (tok->merges[i].key) {
        if (tok->merges[i].key == key) {
            *merged = tok->merges[i].merged;
            return tok->merges[i].rank;
        }
        i = (i + 1) & mask;
    }
    return -1;
}

static gen_status parse_merges(gen__tokenizer *tok, const char *text, size_t len, const char *name)
{
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    if (lines > INT32_MAX / 4)
        return gen__error(GEN_EFORMAT, "%s: too many lines", name);
    size_t cap = 64;
    while (cap < lines * 2)
        cap *= 2;
    tok->merges = gen__calloc(cap, sizeof *tok->merges);
    if (!tok->merges)
        return gen__error(GEN_ENOMEM, "%s: out of memory for %zu merges", name, lines);
    tok->merges_cap = cap;
    char *joined = NULL;
    size_t joined_cap = 0;
    gen_status st = GEN_OK;
    int32_t rank = 0;
    size_t pos = 0, line_no = 0;
    while (pos < len && st == GEN_OK) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl ? 1 : 0);
        line_no++;
        if (n > 0 && line[n - 1] == '\r')
            n--;
        if (line_no == 1 && n >= 8 && memcmp(line, "#version", 8) == 0)
            continue;
        if (n == 0)
            continue;
        const char *sp = memchr(line, ' ', n);
        if (!sp || sp == line || sp == line + n - 1 || memchr(sp + 1, ' ', (size_t)(line + n - sp - 1))) {
            st = gen__error(GEN_EFORMAT, "%s: line %zu: expected two tokens separated by one space",
                            name, line_no);
            break;
        }
        size_t la = (size_t)(sp - line), lb = n - la - 1;
        int32_t a = gen__strmap_get(&tok->vocab, line, la);
        int32_t b = gen__strmap_get(&tok->vocab, sp + 1, lb);
        if (a < 0 || b < 0) {
            st = gen__error(GEN_EFORMAT, "%s: line %zu: token \"%.*s\" is not in the vocabulary",
                            name, line_no, (int)(a < 0 ? (la > 64 ? 64 : la) : (lb > 64 ? 64 : lb)),
                            a < 0 ? line : sp + 1);
            break;
        }
        if (la + lb > joined_cap) {
            joined_cap = (la + lb) * 2;
            char *j = gen__realloc(joined, joined_cap);
            if (!j) {
                st = gen__error(GEN_ENOMEM, "%s: out of memory", name);
                break;
            }
            joined = j;
        }
        memcpy(joined, line, la);
        memcpy(joined + la, sp + 1, lb);
        int32_t m = gen__strmap_get(&tok->vocab, joined, la + lb);
        if (m < 0) {
            st = gen__error(GEN_EFORMAT, "%s: line %zu: merged token \"%.*s\" is not in the vocabulary",
                            name, line_no, (int)((la + lb) > 64 ? 64 : la + lb), joined);
            break;
        }
        st = merge_put(tok, a, b, rank++, m);
    }
    gen__free(joined);
    return st;
}

/* One special-token role from a config object: a string or {"content": ..., "normalized": ...}. */
typedef struct role {
    const char *key;
    char *content;
    int normalized;     /* 0 or 1 */
} role;

static gen_status read_role(json_t *cfg, role *r, const char *name)
{
    json_t *v = json_object_get(cfg, r->key);
    if (!v || json_is_null(v))
        return GEN_OK;
    const char *content = NULL;
    int normalized = 0;
    if (json_is_string(v)) {
        content = json_string_value(v);
    } else if (json_is_object(v) && json_is_string(json_object_get(v, "content"))) {
        content = json_string_value(json_object_get(v, "content"));
        normalized = json_is_true(json_object_get(v, "normalized"));
    } else {
        return gen__error(GEN_EFORMAT, "%s: \"%s\" must be a string or an object with \"content\"",
                          name, r->key);
    }
    if (content[0] == '\0')
        return gen__error(GEN_EFORMAT, "%s: \"%s\" is empty", name, r->key);
    char *copy = gen__strdup(content);
    if (!copy)
        return gen__error(GEN_ENOMEM, "%s: out of memory", name);
    gen__free(r->content);
    r->content = copy;
    r->normalized = normalized;
    return GEN_OK;
}

static gen_status apply_config(json_t *cfg, role roles[4], size_t *max_length, const char *name)
{
    if (!json_is_object(cfg))
        return gen__error(GEN_EFORMAT, "%s: expected a JSON object", name);
    for (int i = 0; i < 4; i++) {
        gen_status st = read_role(cfg, &roles[i], name);
        if (st != GEN_OK)
            return st;
    }
    json_t *ml = json_object_get(cfg, "model_max_length");
    if (ml) {
        if (!json_is_integer(ml) || json_integer_value(ml) < 2 || json_integer_value(ml) > 4096)
            return gen__error(GEN_EFORMAT, "%s: model_max_length must be an integer in [2, 4096]",
                              name);
        *max_length = (size_t)json_integer_value(ml);
    }
    return GEN_OK;
}

static gen_status setup_specials(gen__tokenizer *tok, role roles[4], const char *vocab_name)
{
    static const char *defaults[4] = { "<|startoftext|>", "<|endoftext|>", "<|endoftext|>",
                                       "<|endoftext|>" };
    int32_t ids[4];
    for (int i = 0; i < 4; i++) {
        if (!roles[i].content) {
            roles[i].content = gen__strdup(defaults[i]);
            if (!roles[i].content)
                return gen__error(GEN_ENOMEM, "tokenizer: out of memory");
        }
        ids[i] = gen__strmap_get(&tok->vocab, roles[i].content, strlen(roles[i].content));
        if (ids[i] < 0)
            return gen__error(GEN_EFORMAT, "%s: %s \"%.64s\" is not in the vocabulary", vocab_name,
                              roles[i].key, roles[i].content);
    }
    tok->bos = ids[0];
    tok->eos = ids[1];
    tok->unk = ids[2];
    tok->pad = ids[3];
    /* One entry per distinct string; matched after normalisation only if every
     * role naming it says so (a plain string means not normalized). */
    for (int i = 0; i < 4; i++) {
        size_t k = 0;
        while (k < tok->n_specials && strcmp(tok->specials[k].text, roles[i].content) != 0)
            k++;
        if (k == tok->n_specials) {
            tok->specials[k].text = gen__strdup(roles[i].content);
            if (!tok->specials[k].text)
                return gen__error(GEN_ENOMEM, "tokenizer: out of memory");
            tok->specials[k].len = strlen(roles[i].content);
            tok->specials[k].id = ids[i];
            tok->specials[k].normalized = roles[i].normalized;
            tok->n_specials++;
        } else {
            tok->specials[k].normalized = tok->specials[k].normalized && roles[i].normalized;
        }
    }
    return GEN_OK;
}

static gen_status setup_bytes(gen__tokenizer *tok, const char *vocab_name)
{
    for (unsigned b = 0; b < 256; b++) {
        char sym[16];
        size_t n = gen__utf8_encode(byte_char(b), sym);
        memcpy(sym + n, "</w>", 4);
        int32_t id = gen__strmap_get(&tok->vocab, sym, n);
        int32_t eow = gen__strmap_get(&tok->vocab, sym, n + 4);
        /* A symbol missing from the vocabulary becomes the unknown token, as in the reference. */
        tok->byte_id[b] = id >= 0 ? id : tok->unk;
        tok->byte_eow_id[b] = eow >= 0 ? eow : tok->unk;
    }
    (void)vocab_name;
    return GEN_OK;
}

static gen_status tokenizer_new(gen__tokenizer **out)
{
    gen__tokenizer *tok = gen__calloc(1, sizeof *tok);
    if (!tok)
        return gen__error(GEN_ENOMEM, "tokenizer: out of memory");
    tok->cache = gen__calloc(GEN__BPE_CACHE_SLOTS, sizeof *tok->cache);
    if (!tok->cache) {
        gen__free(tok);
        return gen__error(GEN_ENOMEM, "tokenizer: out of memory for the word cache");
    }
    if (pthread_mutex_init(&tok->cache_lock, NULL) != 0) {
        gen__free(tok->cache);
        gen__free(tok);
        return gen__error(GEN_ENOMEM, "tokenizer: cannot create the cache lock");
    }
    tok->max_length = DEFAULT_MAX_LENGTH;
    *out = tok;
    return GEN_OK;
}

void gen__tokenizer_destroy(gen__tokenizer *tok)
{
    if (!tok)
        return;
    gen__strmap_free(&tok->vocab);
    gen__free(tok->merges);
    for (size_t i = 0; i < tok->n_specials; i++)
        gen__free(tok->specials[i].text);
    pthread_mutex_destroy(&tok->cache_lock);
    gen__free(tok->cache);
    gen__free(tok);
}

static gen_status load_common(gen__tokenizer **out, const char *vocab_json, size_t vocab_len,
                              const char *merges_txt, size_t merges_len, json_t *const *configs,
                              const char *const *config_names, size_t n_configs,
                              const char *vocab_name, const char *merges_name)
{
    *out = NULL;
    gen__tokenizer *tok = NULL;
    gen_status st = tokenizer_new(&tok);
    if (st != GEN_OK)
        return st;
    role roles[4] = { { "bos_token", NULL, 0 }, { "eos_token", NULL, 0 }, { "unk_token", NULL, 0 },
                      { "pad_token", NULL, 0 } };
    st = parse_vocab(tok, vocab_json, vocab_len, vocab_name);
    if (st == GEN_OK)
        st = parse_merges(tok, merges_txt, merges_len, merges_name);
    for (size_t i = 0; st == GEN_OK && i < n_configs; i++)
        if (configs[i])
            st = apply_config(configs[i], roles, &tok->max_length, config_names[i]);
    if (st == GEN_OK)
        st = setup_specials(tok, roles, vocab_name);
    if (st == GEN_OK)
        st = setup_bytes(tok, vocab_name);
    for (int i = 0; i < 4; i++)
        gen__free(roles[i].content);
    if (st != GEN_OK) {
        gen__tokenizer_destroy(tok);
        return st;
    }
    *out = tok;
    return GEN_OK;
}

gen_status gen__tokenizer_load_buffers(gen__tokenizer **out,
                                       const char *vocab_json, size_t vocab_len,
                                       const char *merges_txt, size_t merges_len,
                                       const char *config_json, size_t config_len,
                                       const char *vocab_name, const char *merges_name)
{
    *out = NULL;
    json_t *cfg = NULL;
    if (config_json) {
        json_error_t jerr;
        cfg = json_loadb(config_json, config_len, 0, &jerr);
        if (!cfg)
            return gen__error(GEN_EFORMAT, "tokenizer_config.json: line %d column %d: %s",
                              jerr.line, jerr.column, jerr.text);
    }
    const char *names[1] = { "tokenizer_config.json" };
    gen_status st = load_common(out, vocab_json, vocab_len, merges_txt, merges_len, &cfg, names, 1,
                                vocab_name ? vocab_name : "vocab.json",
                                merges_name ? merges_name : "merges.txt");
    json_decref(cfg);
    return st;
}

/* Read a whole file; GEN_ENOTFOUND if it does not exist (when `optional`, that
 * is not an error: *data stays NULL). */
static gen_status read_file(const char *path, bool optional, char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        if (errno == ENOENT)
            return optional ? GEN_OK : gen__error(GEN_ENOTFOUND, "%s: no such file", path);
        return gen__error(GEN_EIO, "%s: %s", path, strerror(errno));
    }
    gen_status st = GEN_OK;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            if (cap > MAX_FILE_BYTES + 1) {
                st = gen__error(GEN_EFORMAT, "%s: larger than %u MiB", path, MAX_FILE_BYTES >> 20);
                break;
            }
            char *b = gen__realloc(buf, cap);
            if (!b) {
                st = gen__error(GEN_ENOMEM, "%s: out of memory", path);
                break;
            }
            buf = b;
        }
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0) {
            if (ferror(fp))
                st = gen__error(GEN_EIO, "%s: read error", path);
            break;
        }
    }
    fclose(fp);
    if (st != GEN_OK) {
        gen__free(buf);
        return st;
    }
    *data = buf;
    *len = n;
    return GEN_OK;
}

gen_status gen__tokenizer_load(gen__tokenizer **out, const char *dir)
{
    *out = NULL;
    static const char *files[4] = { "vocab.json", "merges.txt", "tokenizer_config.json",
                                    "special_tokens_map.json" };
    char paths[4][4096];
    char *data[4] = { NULL };
    size_t lens[4] = { 0 };
    json_t *cfgs[2] = { NULL, NULL };
    const char *cfg_names[2] = { paths[2], paths[3] };
    gen_status st = GEN_OK;
    for (int i = 0; i < 4 && st == GEN_OK; i++) {
        if ((size_t)snprintf(paths[i], sizeof paths[i], "%s/%s", dir, files[i]) >= sizeof paths[i])
            st = gen__error(GEN_EINVAL, "tokenizer folder path too long: %.200s", dir);
        else
            st = read_file(paths[i], i >= 2, &data[i], &lens[i]);
    }
    for (int i = 2; i < 4 && st == GEN_OK; i++) {
        if (!data[i])
            continue;
        json_error_t jerr;
        cfgs[i - 2] = json_loadb(data[i], lens[i], 0, &jerr);
        if (!cfgs[i - 2])
            st = gen__error(GEN_EFORMAT, "%s: line %d column %d: %s", paths[i], jerr.line,
                            jerr.column, jerr.text);
    }
    if (st == GEN_OK)
        st = load_common(out, data[0], lens[0], data[1], lens[1], cfgs, cfg_names, 2, paths[0],
                         paths[1]);
    for (int i = 0; i < 4; i++)
        gen__free(data[i]);
    json_decref(cfgs[0]);
    json_decref(cfgs[1]);
    return st;
}

int32_t gen__tokenizer_bos(const gen__tokenizer *tok) { return tok->bos; }
int32_t gen__tokenizer_eos(const gen__tokenizer *tok) { return tok->eos; }
int32_t gen__tokenizer_pad(const gen__tokenizer *tok) { return tok->pad; }
size_t gen__tokenizer_max_length(const gen__tokenizer *tok) { return tok->max_length; }
size_t gen__tokenizer_vocab_size(const gen__tokenizer *tok) { return tok->vocab_size; }
