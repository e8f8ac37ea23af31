#!/usr/bin/env python3
"""Pure-numpy re-implementation of torch.randn(..., generator=torch.Generator("cpu")
.manual_seed(seed), dtype=torch.float32) -- an executable form of the spec in
tools/README.md ("torch CPU randn").  Written from reading torch's C++ sources
(ATen/core/MT19937RNGEngine.h, core/TransformationHelper.h, core/DistributionsHelper.h,
native/cpu/DistributionTemplates.h, native/cpu/avx_mathfun.h, CPUGeneratorImpl.cpp,
native/cpu/DistributionKernels.cpp); make_randn_fixtures.py checks it bit for bit
against torch.

Usage as a library:  TorchCpuRandn(seed).randn(numel) -> np.float32 array
"""
import math

import numpy as np

F = np.float32
MT_N, MT_M = 624, 397


class MT19937:
    """Standard 32-bit Mersenne Twister, seeded the way at::mt19937 does it
    (init_genrand with the low 32 bits of the 64-bit seed)."""

    def __init__(self, seed):
        st = [0] * MT_N
        st[0] = seed & 0xFFFFFFFF
        for j in range(1, MT_N):
            st[j] = (1812433253 * (st[j - 1] ^ (st[j - 1] >> 30)) + j) & 0xFFFFFFFF
        self.st = st
        self.idx = MT_N  # first draw regenerates the state

    def _twist(self):
        st = self.st
        for k in range(MT_N):
            y = (st[k] & 0x80000000) | (st[(k + 1) % MT_N] & 0x7FFFFFFF)
            st[k] = st[(k + MT_M) % MT_N] ^ (y >> 1) ^ (0x9908B0DF if y & 1 else 0)
        self.idx = 0

    def next_u32(self):
        if self.idx >= MT_N:
            self._twist()
        y = self.st[self.idx]
        self.idx += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C5680
        y ^= (y << 15) & 0xEFC60000
        y ^= y >> 18
        return y

    def next_u64(self):
        hi = self.next_u32()  # first draw is the HIGH word
        lo = self.next_u32()
        return (hi << 32) | lo


# ---- float32 Cephes log / sincos exactly as in avx_mathfun.h (no FMA contraction) ----

def _f(x):
    return np.asarray(x, dtype=F)


def fma(a, b, c):
    """float32 fused multiply-add: a*b is exact in float64 (24+24 bits); the sum is
    rounded to float64 then float32 -- double rounding cannot change the result here
    because the float64 sum of a 48-bit product and a float32 carries enough guard bits
    except in astronomically rare ties (none occur on [0,1) inputs, verified vs torch)."""
    return (np.asarray(a, np.float64) * np.asarray(b, np.float64) + np.asarray(c, np.float64)).astype(F)


def log_ps(x):
    """log256_ps of avx_mathfun.h.  The AVX2 kernel is compiled by GCC with -mfma and
    default -ffp-contract=fast, so mul-then-add intrinsic pairs become FMAs.  Which
    product gets fused was determined empirically (bit-exact vs torch on 10^5 samples)."""
    x = _f(x).copy()
    x = np.maximum(x, np.array([0x00800000], dtype=np.int32).view(F)[0])
    bits = x.view(np.int32)
    e = ((bits >> 23) & 0x1FF).astype(np.int32) - 0x7F  # x > 0: sign bit is 0
    m = ((bits & ~0x7F800000) | np.array(0.5, F).view(np.int32)).view(F)
    e = e.astype(F) + F(1)
    mask = m < F(0.707106781186547524)
    tmp = np.where(mask, m, F(0))
    m = m - F(1)
    e = e - np.where(mask, F(1), F(0))
    m = m + tmp
    z = m * m
    y = np.full_like(m, F(7.0376836292e-2))
    for c in (-1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1,
              -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1):
        y = fma(y, m, F(c))
    y = y * m
    y = fma(y, z, e * F(-2.12194440e-4))  # (y*m)*z + e*q1: the y*z product is fused
    y = fma(-z, F(0.5), y)
    m = m + y
    m = fma(e, F(0.693359375), m)
    return m.astype(F)


def sincos_ps(x):
    """sincos256_ps of avx_mathfun.h with the same fusing as log_ps.
    Returns (sin, cos)."""
    x = _f(x)
    sign_sin = np.signbit(x)
    x = np.abs(x)
    y = x * F(1.27323954473516)
    j = y.astype(np.int32)  # truncation (cvttps)
    j = (j + 1) & ~1
    y = j.astype(F)
    swap_sin = (j & 4) != 0
    poly_mask = (j & 2) == 0
    x = fma(y, F(-0.78515625), x)
    x = fma(y, F(-2.4187564849853515625e-4), x)
    x = fma(y, F(-3.77489497744594108e-8), x)
    sign_cos = ((~(j - 2)) & 4) != 0
    sign_sin = sign_sin ^ swap_sin
    z = x * x
    yc = fma(F(2.443315711809948e-005), z, F(-1.388731625493765e-003))
    yc = fma(yc, z, F(4.166664568298827e-002))
    yc = yc * z
    yc = fma(yc, z, -(z * F(0.5)))  # y*z - z*0.5: the y*z product is fused
    yc = yc + F(1)
    ys = fma(F(-1.9515295891e-4), z, F(8.3321608736e-3))
    ys = fma(ys, z, F(-1.6666654611e-1))
    ys = ys * z
    ys = fma(ys, x, x)
    s = np.where(poly_mask, ys, yc)
    c = np.where(poly_mask, yc, ys)
    s = np.where(sign_sin, -s, s)
    c = np.where(sign_cos, -c, c)
    return s.astype(F), c.astype(F)


class TorchCpuRandn:
    """State = mt19937 + the cached second double normal sample (scalar path)."""

    def __init__(self, seed, vector_math="avx2"):
        # seed: python int; torch.Generator.manual_seed takes it mod 2**64
        self.mt = MT19937(seed % (1 << 64))
        self.cached_double = None
        self.vector_math = vector_math  # "avx2" (avx_mathfun) or "scalar" (libm float)

    def uniform_f32(self):
        return F((self.mt.next_u32() & 0xFFFFFF) * (1.0 / (1 << 24)))

    def uniform_f64(self):
        return (self.mt.next_u64() & ((1 << 53) - 1)) * (1.0 / (1 << 53))

    def _normal_f64(self):
        if self.cached_double is not None:
            v, self.cached_double = self.cached_double, None
            return v
        u1 = self.uniform_f64()
        u2 = self.uniform_f64()
        r = math.sqrt(-2.0 * math.log1p(-u2))
        theta = 2.0 * math.pi * u1
        self.cached_double = r * math.sin(theta)
        return r * math.cos(theta)

    def _box_muller16(self, d):
        u1 = F(1) - d[:8]
        u2 = d[8:16]
        if self.vector_math == "avx2":
            radius = np.sqrt(F(-2) * log_ps(u1))
            theta = F(2.0 * math.pi) * u2
            s, c = sincos_ps(theta)
        else:
            radius = np.sqrt(F(-2) * np.log(u1))
            theta = (np.float64(2.0 * math.pi) * u2.astype(np.float64)).astype(F)
            s, c = np.sin(theta), np.cos(theta)
        d[:8] = radius * c
        d[8:16] = radius * s

    def randn(self, numel):
        if numel < 16:  # scalar path, double precision, cast to float
            return np.array([self._normal_f64() for _ in range(numel)], dtype=np.float64).astype(F)
        d = np.array([self.uniform_f32() for _ in range(numel)], dtype=F)
        for i in range(0, numel - 15, 16):
            self._box_muller16(d[i:i + 16])
        if numel % 16:
            tail = np.array([self.uniform_f32() for _ in range(16)], dtype=F)
            self._box_muller16(tail)
            d[numel - 16:] = tail
        return d


if __name__ == "__main__":
    import sys
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 42
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    print(TorchCpuRandn(seed).randn(n))
