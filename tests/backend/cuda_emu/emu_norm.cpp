// lib/backend/cuda/kernels/norm.cu on the CPU emulator (cuda_emu.h).
#include "cuda_emu.h"

#include "backend/cuda/kernels/norm.cu"
