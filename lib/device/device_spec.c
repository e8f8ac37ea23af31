#include "device/device_spec.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"

static bool same_entry(const gen__device_entry *a, const gen__device_entry *b)
{
    return a->kind == b->kind && a->index == b->index;
}

/* Parse one trimmed entry text[0..len). */
static gen_status parse_entry(const char *text, size_t len, size_t position,
                              gen__device_entry *out)
{
    static const struct {
        const char *name;
        gen__device_kind kind;
    } kinds[] = {{"cpu", GEN__DEVICE_CPU}, {"cuda", GEN__DEVICE_CUDA}};

    if (len == 0)
        return gen__error(GEN_EINVAL, "generation_devices: entry %zu is empty", position);
    size_t kind_len = 0;
    while (kind_len < len && text[kind_len] != ':')
        kind_len++;
    int found = -1;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strlen(kinds[i].name) == kind_len && memcmp(kinds[i].name, text, kind_len) == 0)
            found = (int)i;
    }
    if (found < 0)
        return gen__error(GEN_EINVAL,
                          "generation_devices: unknown device kind in \"%.*s\" (entry %zu); use "
                          "\"auto\", \"cuda\", \"cuda:N\", \"cpu\" or \"cpu:N\"",
                          (int)len, text, position);
    out->kind = kinds[found].kind;
    if (kind_len == len) {
        out->index = out->kind == GEN__DEVICE_CPU ? 0 : -1;
        return GEN_OK;
    }
    const char *digits = text + kind_len + 1;
    size_t ndigits = len - kind_len - 1;
    if (ndigits == 0 || ndigits > 4)
        goto malformed;
    int index = 0;
    for (size_t i = 0; i < ndigits; i++) {
        if (!isdigit((unsigned char)digits[i]))
            goto malformed;
        index = index * 10 + (digits[i] - '0');
    }
    if (index > GEN__MAX_DEVICE_INDEX)
        return gen__error(GEN_EINVAL, "generation_devices: index in \"%.*s\" is above %d",
                          (int)len, text, GEN__MAX_DEVICE_INDEX);
    out->index = index;
    return GEN_OK;
malformed:
    return gen__error(GEN_EINVAL,
                      "generation_devices: malformed entry \"%.*s\" (entry %zu); expected "
                      "\"%s:N\" with N a device index",
                      (int)len, text, position, kinds[found].name);
}

gen_status gen__device_spec_parse(const char *text, gen__device_spec *out)
{
    gen__device_spec spec;
    memset(&spec, 0, sizeof(spec));
    if (!text)
        return gen__error(GEN_EINVAL, "generation_devices: missing value");

    const char *p = text;
    size_t position = 0;
    bool saw_auto = false;
    for (;;) {
        position++;
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        const char *b = p, *e = end;
        while (b < e && isspace((unsigned char)*b))
            b++;
        while (e > b && isspace((unsigned char)e[-1]))
            e--;
        size_t len = (size_t)(e - b);
        if (len == 4 && memcmp(b, "auto", 4) == 0) {
            saw_auto = true;
        } else if (len == 0 && !comma && position == 1) {
            return gen__error(GEN_EINVAL,
                              "generation_devices: the device list is empty; use \"auto\" or "
                              "list devices such as \"cuda:0,cuda:1\"");
        } else {
            gen__device_entry entry;
            gen_status st = parse_entry(b, len, position, &entry);
            if (st != GEN_OK)
                return st;
            bool duplicate = false;
            for (size_t i = 0; i < spec.count; i++)
                duplicate = duplicate || same_entry(&spec.entries[i], &entry);
            if (!duplicate) {
                if (spec.count == GEN__MAX_DEVICES)
                    return gen__error(GEN_EINVAL, "generation_devices: more than %d devices",
                                      GEN__MAX_DEVICES);
                spec.entries[spec.count++] = entry;
            }
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    if (saw_auto && (spec.count > 0 || position > 1))
        return gen__error(GEN_EINVAL,
                          "generation_devices: \"auto\" cannot be combined with other entries "
                          "(\"%s\")",
                          text);
    spec.is_auto = saw_auto;
    *out = spec;
    return GEN_OK;
}

void gen__device_entry_format(const gen__device_entry *entry, char *buf, size_t buf_size)
{
    const char *kind = entry->kind == GEN__DEVICE_CPU ? "cpu" : "cuda";
    if (entry->index < 0)
        snprintf(buf, buf_size, "%s", kind);
    else
        snprintf(buf, buf_size, "%s:%d", kind, entry->index);
}

gen_status gen__device_spec_format(const gen__device_spec *spec, char *buf, size_t buf_size)
{
    size_t used = 0;
    if (buf_size == 0)
        return gen__error(GEN_EINVAL, "generation_devices: no room for the text");
    buf[0] = '\0';
    if (spec->is_auto) {
        if (buf_size < 5)
            return gen__error(GEN_EINVAL, "generation_devices: no room for the text");
        memcpy(buf, "auto", 5);
        return GEN_OK;
    }
    for (size_t i = 0; i < spec->count; i++) {
        char one[32];
        gen__device_entry_format(&spec->entries[i], one, sizeof(one));
        size_t need = strlen(one) + (i ? 1 : 0);
        if (used + need + 1 > buf_size)
            return gen__error(GEN_EINVAL, "generation_devices: the list is longer than %zu bytes",
                              buf_size - 1);
        used += (size_t)snprintf(buf + used, buf_size - used, "%s%s", i ? "," : "", one);
    }
    return GEN_OK;
}
