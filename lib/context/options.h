/* Internal view of context options: defaults per version and validation. */
#ifndef GEN_CONTEXT_OPTIONS_H
#define GEN_CONTEXT_OPTIONS_H

#include <gen/context.h>

/* Copy caller options (any supported version) over the defaults into *out and
 * validate every field (the same checks as gen_context_options_set). */
gen_status gen__context_options_import(gen_context_options *out, const gen_context_options *opts);

#endif
