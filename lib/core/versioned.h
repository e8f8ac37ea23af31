/* Versioned options structs: a caller compiled against older headers passes a
 * struct whose `version` says which fields it has. These helpers copy such a
 * struct over the current defaults. */
#ifndef GEN_CORE_VERSIONED_H
#define GEN_CORE_VERSIONED_H

#include <stddef.h>
#include <stdint.h>

#include <gen/common.h>

/* sizes[v] is the size of the struct at version v (sizes[0] unused), for v in
 * 1..current. Copies the first sizes[src->version] bytes of src over dst (which
 * holds the current defaults) and sets dst's version to current.
 * GEN_EINVAL for version 0, GEN_EVERSION for a version newer than current. */
gen_status gen__versioned_copy(void *dst, const void *src, const size_t *sizes, uint32_t current,
                               const char *type_name);

/* The *_options_init(opts, version) of every options struct: fill the first
 * sizes[version] bytes of dst with the defaults (the INIT macro's value, all
 * other bytes zero so the two compare equal) and set the version.
 * GEN_EINVAL for a NULL dst or version 0, GEN_EVERSION for a newer version;
 * `fn` names the public function in the message. */
gen_status gen__versioned_init(void *dst, const void *defaults, const size_t *sizes,
                               uint32_t version, uint32_t current, const char *fn);

#endif
