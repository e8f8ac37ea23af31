/* Parsing of option-style text values: sizes, integers, booleans. Each parser
 * records a message naming `what` (the option or field) and the bad text. */
#ifndef GEN_CORE_PARSE_H
#define GEN_CORE_PARSE_H

#include <stdbool.h>
#include <stdint.h>

#include <gen/common.h>

/* "8GiB", "512 MiB", "1.5GB", "4096", "64k". Binary units: KiB MiB GiB TiB and
 * the bare letters K M G T; decimal units: KB MB GB TB; "B" or no unit = bytes.
 * Case-insensitive. Fractions are allowed with a unit and rounded down to a byte. */
gen_status gen__parse_size(const char *what, const char *text, uint64_t *out);

/* Base-10 integer within [min, max], surrounding spaces allowed. */
gen_status gen__parse_int64(const char *what, const char *text, int64_t min, int64_t max,
                            int64_t *out);

/* A finite decimal number ("7.5", "-1e-3") within [min, max] (min excluded
 * when min_exclusive), parsed in the C locale whatever the host's LC_NUMERIC. */
gen_status gen__parse_double(const char *what, const char *text, double min, double max,
                             bool min_exclusive, double *out);

/* true/false, yes/no, on/off, 1/0 (case-insensitive). */
gen_status gen__parse_bool(const char *what, const char *text, bool *out);

/* Format a byte count for humans: "3 GiB", "1.5 MiB", "512 B". */
void gen__format_size(uint64_t bytes, char *buf, size_t buf_size);

#endif
