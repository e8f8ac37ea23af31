#include <gen/common.h>

GEN_API const char *gen_status_string(gen_status status)
{
    switch (status) {
    case GEN_OK: return "success";
    case GEN_EINVAL: return "invalid argument";
    case GEN_ENOMEM: return "out of host memory";
    case GEN_EIO: return "input/output error";
    case GEN_EFORMAT: return "malformed data";
    case GEN_ENOTFOUND: return "not found";
    case GEN_EUNSUPPORTED: return "not supported";
    case GEN_EVERSION: return "version not supported (newer than this library)";
    case GEN_EFULL: return "capacity limit reached";
    case GEN_EBUSY: return "resource busy";
    case GEN_ECANCELED: return "canceled";
    case GEN_EDEVICE: return "device error";
    case GEN_EDEVICE_OOM: return "out of device memory";
    case GEN_EDATABASE: return "database error";
    case GEN_EPERM: return "permission denied";
    case GEN_ESTATE: return "invalid state for this operation";
    case GEN_ETIMEOUT: return "timed out";
    case GEN_EUSER: return "aborted by a user callback";
    case GEN_ENOSPC: return "no space left on device";
    case GEN_EINTERNAL: return "internal error";
    }
    return "unknown status";
}
