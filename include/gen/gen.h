/* libgen — text-to-image generation service library. Include this header.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef GEN_GEN_H
#define GEN_GEN_H

#include <gen/common.h>
#include <gen/context.h>
#include <gen/device.h>
#include <gen/event.h>
#include <gen/generate.h>
#include <gen/job.h>
#include <gen/queue.h>
#include <gen/model.h>
#include <gen/image.h>

#endif /* GEN_GEN_H */
