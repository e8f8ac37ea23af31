/* Lookups over the generated tables in unicode_tables.c. */
#include "pipeline/unicode_tables.h"

static const gen__uc_range *find_range(const gen__uc_range *r, size_t n, uint32_t cp)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r[mid].last < cp)
            lo = mid + 1;
        else if (r[mid].first > cp)
            hi = mid;
        else
            return &r[mid];
    }
    return NULL;
}

int gen__uc_class(uint32_t cp)
{
    if (cp < 0x80) {
        /* ASCII fast path: the common case for prompts. */
        if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z'))
            return GEN__UC_LETTER;
        if (cp >= '0' && cp <= '9')
            return GEN__UC_NUMBER;
        if (cp == ' ' || (cp >= 0x09 && cp <= 0x0d))
            return GEN__UC_SPACE;
        return GEN__UC_OTHER;
    }
    const gen__uc_range *r = find_range(gen__uc_class_ranges, gen__uc_class_count, cp);
    return r ? (int)r->value : GEN__UC_OTHER;
}

int gen__uc_ccc(uint32_t cp)
{
    if (cp < 0x300)
        return 0;
    const gen__uc_range *r = find_range(gen__uc_ccc_ranges, gen__uc_ccc_count, cp);
    return r ? (int)r->value : 0;
}

size_t gen__uc_lower_of(uint32_t cp, uint32_t out[3])
{
    if (cp < 0x80) {
        out[0] = (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
        return 1;
    }
    size_t lo = 0, hi = gen__uc_lower_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (gen__uc_lower[mid].cp < cp)
            lo = mid + 1;
        else if (gen__uc_lower[mid].cp > cp)
            hi = mid;
        else {
            out[0] = gen__uc_lower[mid].mapped;
            return 1;
        }
    }
    for (size_t i = 0; i < gen__uc_lower_multi_count; i++) {
        if (gen__uc_lower_multi[i].cp == cp) {
            for (uint32_t k = 0; k < gen__uc_lower_multi[i].len; k++)
                out[k] = gen__uc_lower_multi[i].mapped[k];
            return gen__uc_lower_multi[i].len;
        }
    }
    out[0] = cp;
    return 1;
}

size_t gen__uc_decompose1(uint32_t cp, uint32_t out[2])
{
    if (cp < 0xC0)
        return 0;
    size_t lo = 0, hi = gen__uc_decomp_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (gen__uc_decomp[mid].a < cp)
            lo = mid + 1;
        else if (gen__uc_decomp[mid].a > cp)
            hi = mid;
        else {
            out[0] = gen__uc_decomp[mid].b;
            out[1] = gen__uc_decomp[mid].c;
            return out[1] ? 2 : 1;
        }
    }
    return 0;
}

uint32_t gen__uc_compose_pair(uint32_t a, uint32_t b)
{
    size_t lo = 0, hi = gen__uc_compose_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const gen__uc_triple *t = &gen__uc_compose[mid];
        if (t->a < a || (t->a == a && t->b < b))
            lo = mid + 1;
        else if (t->a > a || (t->a == a && t->b > b))
            hi = mid;
        else
            return t->c;
    }
    return 0;
}
