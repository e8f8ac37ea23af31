#include "device/device.h"

static _Thread_local const gen__device *tls_session_device;

void gen__session_device_set(const gen__device *device)
{
    tls_session_device = device;
}

const gen__device *gen__session_device_get(void)
{
    return tls_session_device;
}

void gen__session_device_clear(void)
{
    tls_session_device = NULL;
}
