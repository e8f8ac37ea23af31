/* Test helpers: locate fixtures, read files, and reference tensors from
 * .safetensors fixtures (through lib/model's reader) as doubles. */
#ifndef GEN_TESTS_PIPELINE_FIXTURE_H
#define GEN_TESTS_PIPELINE_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Path of tests/fixtures/<rel> in the source tree (static buffer per call site not needed:
 * the result is written into buf). */
const char *fixture_path(char *buf, size_t size, const char *rel);

/* Whole file into a malloc'ed buffer (NULL on failure); *len gets the size. */
char *fixture_read_file(const char *path, size_t *len);

typedef struct st_file {
    struct gen__st_file *st;
} st_file;

int st_open(st_file *f, const char *path);
void st_close(st_file *f);
/* Tensor `name` (F32, F64 or I64) as doubles (malloc'ed); *n gets the element
 * count. NULL if absent or of another dtype. */
double *st_get(const st_file *f, const char *name, size_t *n);

/* Relative L2 error ||a-b|| / max(||b||, tiny), and max |a-b|. */
double rel_l2(const double *a, const double *b, size_t n);
double max_abs_diff(const double *a, const double *b, size_t n);

#endif
