/* Test helper: write .safetensors files (valid ones from a tensor list, or
 * raw bytes for broken ones) so that every test makes its own corpus. */
#ifndef GEN_TESTS_MODEL_ST_WRITE_H
#define GEN_TESTS_MODEL_ST_WRITE_H

#include <stddef.h>
#include <stdint.h>

typedef struct st_spec {
    const char *name;
    const char *dtype; /* "F32", "F16", ... */
    int ndim;
    int64_t shape[8];
    const void *data; /* NULL: bytes 0, 1, 2, ... (mod 251) */
} st_spec;

size_t st_dtype_size(const char *dtype);

/* A valid file: tensors laid out in the order given, header padded with
 * spaces to a multiple of 8. metadata: NULL or a JSON object text. 0 on success. */
int st_write(const char *path, const st_spec *specs, size_t n, const char *metadata);

/* Exactly: 8-byte little-endian header_len, then header_bytes of header, then data. */
int st_write_raw(const char *path, uint64_t header_len, const char *header, size_t header_bytes,
                 const void *data, size_t data_len);

/* A fresh temporary directory (mkdtemp under $TMPDIR or /tmp); removed with st_rmtree. */
char *st_tempdir(void);
void st_rmtree(const char *dir);
/* dir + "/" + name in a static rotating buffer (valid for the next 7 calls). */
const char *st_path(const char *dir, const char *name);

#endif
