/* Metadata: the JSON libgen stores in an iTXt chunk, found by walking the
 * chunk list (no pixel decoding, CRCs checked), and the public reader. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <gen/image.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/utf8.h"
#include "image/png.h"

static uint32_t crc_table[256];
static int crc_ready;

static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n)
{
    if (!__atomic_load_n(&crc_ready, __ATOMIC_ACQUIRE)) {
        /* Idempotent: racing threads compute the same table. */
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
            __atomic_store_n(&crc_table[i], c, __ATOMIC_RELAXED);
        }
        __atomic_store_n(&crc_ready, 1, __ATOMIC_RELEASE);
    }
    for (size_t i = 0; i < n; i++)
        crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return crc;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

gen_status gen__png_find_text(const void *data, size_t len, const char *keyword, const char *name,
                              char **text_out, size_t *text_len)
{
    static const uint8_t sig[8] = { 137, 80, 78, 71, 13, 10, 26, 10 };
    const uint8_t *p = data;
    *text_out = NULL;
    *text_len = 0;
    if (!name)
        name = "image";
    if (!p || len < 8 || memcmp(p, sig, 8) != 0)
        return gen__error(GEN_EFORMAT, "%s: not a PNG file", name);
    size_t klen = strlen(keyword);
    size_t pos = 8;
    for (;;) {
        if (len - pos < 12)
            return gen__error(GEN_EFORMAT, "%s: truncated PNG (chunk header at byte %zu)", name, pos);
        uint32_t n = be32(p + pos);
        const uint8_t *type = p + pos + 4;
        if (n > 0x7fffffffu || (size_t)n > len - pos - 12)
            return gen__error(GEN_EFORMAT, "%s: truncated PNG (chunk %.4s of %u bytes at byte %zu)",
                              name, (const char *)type, n, pos);
        const uint8_t *body = type + 4;
        uint32_t crc = crc32_update(0xffffffffu, type, 4 + (size_t)n) ^ 0xffffffffu;
        if (crc != be32(body + n))
            return gen__error(GEN_EFORMAT, "%s: corrupt PNG (bad CRC in chunk %.4s at byte %zu)", name,
                              (const char *)type, pos);
        bool itxt = memcmp(type, "iTXt", 4) == 0, text = memcmp(type, "tEXt", 4) == 0;
        if ((itxt || text) && n > klen && memcmp(body, keyword, klen) == 0 && body[klen] == 0) {
            const uint8_t *q = body + klen + 1, *end = body + n;
            if (itxt) {
                /* compression flag, method, language tag\0, translated keyword\0 */
                if (end - q < 2)
                    return gen__error(GEN_EFORMAT, "%s: malformed iTXt chunk", name);
                if (q[0] != 0)
                    return gen__error(GEN_EUNSUPPORTED, "%s: compressed \"%s\" text is not supported",
                                      name, keyword);
                q += 2;
                for (int field = 0; field < 2; field++) {
                    const uint8_t *z = memchr(q, 0, (size_t)(end - q));
                    if (!z)
                        return gen__error(GEN_EFORMAT, "%s: malformed iTXt chunk", name);
                    q = z + 1;
                }
            }
            size_t tl = (size_t)(end - q);
            char *out = gen__malloc(tl + 1);
            if (!out)
                return gen__error(GEN_ENOMEM, "%s: out of memory", name);
            memcpy(out, q, tl);
            out[tl] = '\0';
            *text_out = out;
            *text_len = tl;
            return GEN_OK;
        }
        if (memcmp(type, "IEND", 4) == 0)
            return gen__error(GEN_ENOTFOUND, "%s: no \"%s\" metadata", name, keyword);
        pos += 12 + (size_t)n;
    }
}

gen_status gen__image_meta_to_json(const gen__image_meta *m, char **json_out)
{
    *json_out = NULL;
    const char *names[4] = { "model", "prompt", "negative_prompt", "scheduler" };
    const char *vals[4] = { m->model, m->prompt, m->negative_prompt, m->scheduler };
    json_t *o = json_object();
    if (!o)
        return gen__error(GEN_ENOMEM, "metadata: out of memory");
    gen_status st = GEN_OK;
    for (int i = 0; i < 4 && st == GEN_OK; i++) {
        const char *v = vals[i] ? vals[i] : "";
        if (!gen__utf8_valid(v, strlen(v)))
            st = gen__error(GEN_EINVAL, "metadata: %s is not valid UTF-8", names[i]);
        else if (json_object_set_new(o, names[i], json_string(v)) != 0)
            st = gen__error(GEN_ENOMEM, "metadata: out of memory");
    }
    if (st == GEN_OK) {
        /* Seeds use all 64 bits; JSON integers here are signed 64-bit, so
         * large seeds are written as strings rather than wrapped. */
        json_t *seed = m->seed <= (uint64_t)INT64_MAX ? json_integer((json_int_t)m->seed) : NULL;
        if (!seed) {
            char buf[24];
            snprintf(buf, sizeof buf, "%llu", (unsigned long long)m->seed);
            seed = json_string(buf);
        }
        if (json_object_set_new(o, "seed", seed) ||
            json_object_set_new(o, "steps", json_integer(m->steps)) ||
            json_object_set_new(o, "guidance", json_real(m->guidance)) ||
            json_object_set_new(o, "width", json_integer(m->width)) ||
            json_object_set_new(o, "height", json_integer(m->height)) ||
            json_object_set_new(o, "strength", m->strength >= 0 ? json_real(m->strength) : json_null()) ||
            json_object_set_new(o, "libgen_version", json_string(gen_version_string())))
            st = gen__error(GEN_ENOMEM, "metadata: out of memory");
    }
    char *text = st == GEN_OK ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(o);
    if (st != GEN_OK)
        return st;
    if (!text)
        return gen__error(GEN_ENOMEM, "metadata: out of memory");
    *json_out = gen__strdup(text);
    free(text);
    return *json_out ? GEN_OK : gen__error(GEN_ENOMEM, "metadata: out of memory");
}

GEN_API gen_status gen_image_read_metadata(const char *path, char *buf, size_t buf_size,
                                           size_t *needed)
{
    if (needed)
        *needed = 0;
    if (!path || (!buf && buf_size > 0))
        return gen__error(GEN_EINVAL, "gen_image_read_metadata: NULL path or buffer");
    uint8_t *data;
    size_t len;
    gen_status st = gen__read_whole_file(path, (size_t)1 << 30, &data, &len);
    if (st != GEN_OK)
        return st;
    char *text;
    size_t tl;
    st = gen__png_find_text(data, len, GEN__PNG_META_KEY, path, &text, &tl);
    gen__free(data);
    if (st != GEN_OK)
        return st;
    if (needed)
        *needed = tl + 1;
    if (!buf) {
        gen__free(text);
        return GEN_OK;
    }
    if (buf_size < tl + 1) {
        gen__free(text);
        return gen__error(GEN_EFULL, "%s: metadata needs %zu bytes, the buffer has %zu", path, tl + 1,
                          buf_size);
    }
    memcpy(buf, text, tl + 1);
    gen__free(text);
    return GEN_OK;
}
