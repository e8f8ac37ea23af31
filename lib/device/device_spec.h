/* The text form of `generation_devices`: parsing, validation of its syntax,
 * normalisation and de-duplication. Whether a CUDA index exists is checked
 * later, when the device pool resolves the spec against the hardware. */
#ifndef GEN_DEVICE_SPEC_H
#define GEN_DEVICE_SPEC_H

#include <stdbool.h>
#include <stddef.h>

#include <gen/common.h>

#define GEN__MAX_DEVICES 64
#define GEN__MAX_DEVICE_INDEX 1023

typedef enum gen__device_kind {
    GEN__DEVICE_CPU = 0,
    GEN__DEVICE_CUDA = 1
} gen__device_kind;

typedef struct gen__device_entry {
    gen__device_kind kind;
    int index; /* -1 for bare "cuda": the current CUDA device */
} gen__device_entry;

typedef struct gen__device_spec {
    bool is_auto; /* "auto": entries is empty */
    size_t count;
    gen__device_entry entries[GEN__MAX_DEVICES];
} gen__device_spec;

/* Parse "auto" or "cuda:0, cuda:2" / "cpu:0,cpu:1" / "cuda" / "cpu". Entries are
 * trimmed, "cpu" becomes cpu:0, duplicates are dropped keeping the first.
 * GEN_EINVAL naming the entry for: an empty list or entry, an unknown kind, a
 * malformed index, "auto" mixed with devices, too many devices. */
gen_status gen__device_spec_parse(const char *text, gen__device_spec *out);

/* Canonical text ("auto" or "cuda:0,cuda:2"); GEN_EINVAL if buf is too small. */
gen_status gen__device_spec_format(const gen__device_spec *spec, char *buf, size_t buf_size);

/* "cpu:1", "cuda:0", "cuda" */
void gen__device_entry_format(const gen__device_entry *entry, char *buf, size_t buf_size);

#endif
