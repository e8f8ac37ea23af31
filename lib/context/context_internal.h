/* The context object. Modules reach the logger and options through it. */
#ifndef GEN_CONTEXT_INTERNAL_H
#define GEN_CONTEXT_INTERNAL_H

#include <gen/context.h>

#include <gen/device.h>

#include "core/log.h"

struct gen_context {
    gen_context_options options; /* validated, normalised copy */
    gen__logger logger;
    gen_device_pool *devices;    /* resolved generation_devices */
};

#endif
