/* Strict, zero-copy reader of .safetensors files (mmap).
 *
 * Everything in the file is validated before a tensor is handed out: header
 * length bounds, well-formed JSON with unique keys, known dtypes, shape x dtype
 * size == byte span, spans inside the data buffer, not overlapping and leaving
 * no gap, __metadata__ values strings. Each failure is GEN_EFORMAT (GEN_EIO for
 * an unreadable file) with a message naming the file, the tensor and the rule.
 * The file's bytes are assumed little-endian, as the format says. */
#ifndef GEN_MODEL_SAFETENSORS_H
#define GEN_MODEL_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gen/common.h>

#include "model/dtype.h"

#define GEN__ST_MAX_DIMS 8
/* Same bound as the reference implementation: a real header is a few hundred KiB. */
#define GEN__ST_MAX_HEADER ((uint64_t)100 << 20)

/* A tensor inside a mapped file. `data` points into the mapping (zero copy) and
 * stays valid while the file (or the model that holds it) is open. */
typedef struct gen__st_view {
    const char *name;
    gen__st_dtype dtype;
    int ndim;
    int64_t shape[GEN__ST_MAX_DIMS];
    uint64_t numel;
    const void *data;
    size_t nbytes;
    bool aligned; /* data is aligned to the element size: usable in place */
} gen__st_view;

typedef struct gen__st_file gen__st_file;

/* Map and validate `path`. *out is NULL on failure. */
gen_status gen__st_open(gen__st_file **out, const char *path);

/* Validate a file image already in memory (not copied: it must outlive the
 * handle). `label` names it in messages. Used by the fuzz targets and tests. */
gen_status gen__st_open_memory(gen__st_file **out, const void *data, size_t size,
                               const char *label);

/* Unmap and free. NULL is accepted. */
void gen__st_close(gen__st_file *file);

const char *gen__st_path(const gen__st_file *file);
uint64_t gen__st_file_size(const gen__st_file *file);

/* Tensors sorted by name (strcmp order). */
size_t gen__st_count(const gen__st_file *file);
const gen__st_view *gen__st_at(const gen__st_file *file, size_t index);
/* NULL when absent (no error recorded). */
const gen__st_view *gen__st_find(const gen__st_file *file, const char *name);

/* Byte offset of a view's data in the file (for readers that do not use the mapping). */
uint64_t gen__st_file_offset(const gen__st_file *file, const gen__st_view *view);

/* __metadata__ entries (sorted by key); value NULL when the key is absent. */
size_t gen__st_metadata_count(const gen__st_file *file);
const char *gen__st_metadata_key(const gen__st_file *file, size_t index);
const char *gen__st_metadata_get(const gen__st_file *file, const char *key);

/* Text of a view's shape, "[320, 4, 3, 3]", for messages. */
void gen__shape_format(const gen__st_view *view, char *buf, size_t buf_size);

#endif
