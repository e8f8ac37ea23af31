/* Fuzz the tokenizer: its files and prompt encoding.
 * Input byte 0 even: the rest is a prompt, encoded with a built-in vocabulary
 * (the 512 byte symbols, some merges, the special tokens).
 * Byte 0 odd: the rest is "vocab.json\0merges.txt\0config\0prompt" (missing
 * parts empty; an empty config means none), loaded and, if valid, used. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/utf8.h"
#include "pipeline/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static gen__tokenizer *builtin;

static unsigned byte_char(unsigned b)
{
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))
        return b;
    unsigned n = 0;
    for (unsigned c = 0; c < b; c++)
        if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255)))
            n++;
    return 256 + n;
}

static gen__tokenizer *make_builtin(void)
{
    json_t *v = json_object();
    int id = 0;
    for (unsigned b = 0; b < 256; b++) {
        char s[16];
        size_t n = gen__utf8_encode(byte_char(b), s);
        s[n] = '\0';
        json_object_set_new(v, s, json_integer(id++));
        strcat(s, "</w>");
        json_object_set_new(v, s, json_integer(id++));
    }
    static const char *merges[] = { "t h", "th e</w>", "a n", "an d</w>", "i n", "in g</w>",
                                    "c a", "ca t</w>", "e r</w>" };
    char text[512] = "#version: 0.2\n";
    for (size_t i = 0; i < sizeof merges / sizeof merges[0]; i++) {
        char joined[32];
        const char *sp = strchr(merges[i], ' ');
        snprintf(joined, sizeof joined, "%.*s%s", (int)(sp - merges[i]), merges[i], sp + 1);
        json_object_set_new(v, joined, json_integer(id++));
        strcat(text, merges[i]);
        strcat(text, "\n");
    }
    json_object_set_new(v, "<|startoftext|>", json_integer(id++));
    json_object_set_new(v, "<|endoftext|>", json_integer(id++));
    char *vj = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    gen__tokenizer *tok = NULL;
    if (gen__tokenizer_load_buffers(&tok, vj, strlen(vj), text, strlen(text), NULL, 0, NULL, NULL) !=
        GEN_OK)
        abort();
    free(vj);
    return tok;
}

static void encode_checked(const gen__tokenizer *tok, const char *p, size_t n)
{
    int32_t ids[77];
    bool trunc;
    gen_status st = gen__tokenizer_encode_padded(tok, p, n, ids, 77, &trunc);
    if (st == GEN_OK && (ids[0] != gen__tokenizer_bos(tok)))
        abort();
    int32_t more_ids[512];
    size_t count;
    bool more;
    st = gen__tokenizer_encode(tok, p, n, more_ids, 512, &count, &more);
    if (st == GEN_OK && count > 512)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (!builtin)
        builtin = make_builtin();
    const char *rest = (const char *)data + 1;
    size_t n = size - 1;
    if ((data[0] & 1) == 0) {
        encode_checked(builtin, rest, n);
        return 0;
    }
    const char *part[4] = { "", "", "", "" };
    size_t len[4] = { 0, 0, 0, 0 };
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= n && k < 4; i++) {
        if (i == n || (rest[i] == '\0' && k < 3)) {
            part[k] = rest + start;
            len[k] = i - start;
            k++;
            start = i + 1;
        }
    }
    gen__tokenizer *tok = NULL;
    if (gen__tokenizer_load_buffers(&tok, part[0], len[0], part[1], len[1],
                                    len[2] ? part[2] : NULL, len[2], NULL, NULL) == GEN_OK) {
        encode_checked(tok, part[3], len[3]);
        gen__tokenizer_destroy(tok);
    }
    return 0;
}
