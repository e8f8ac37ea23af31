/* Internal view of queue options. */
#ifndef GEN_QUEUE_OPTIONS_H
#define GEN_QUEUE_OPTIONS_H

#include <gen/queue.h>

/* Copy caller options (any supported version) over the defaults and validate. */
gen_status gen__queue_options_import(gen_queue_options *out, const gen_queue_options *opts);

#endif
