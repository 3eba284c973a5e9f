// The scale searches behind the K-quant reference quantizers (internal to core/quant/).
// Each reproduces the float arithmetic of GGUF's reference search step for step, because the
// chosen levels, and so the bytes, depend on every rounding.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>

namespace sluice {

// Magnitudes below this count as an all-zero group.
inline constexpr float kGroupMaxEps = 1e-15f;

// Asymmetric fit x ~ scale * L - min with L in [0, nmax]: a first guess from the range, then
// nstep + 1 trial inverse scales (rmin + rdelta * is + nmax) / range, each refined by weighted
// least squares; keeps the one of smallest weighted error (|diff| if use_mad, else diff^2).
// Writes L, *neg_min (the offset to subtract, >= 0) and returns the scale. laux: n bytes scratch.
float FitScaleMin(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* neg_min,
                  uint8_t* laux, float rmin, float rdelta, int nstep, bool use_mad);

// Symmetric fit x ~ scale * (L - nmax) with L - nmax in [-nmax, nmax - 1], weights x^2, trying
// 18 inverse scales around nmax / max. Returns the scale (0 for an all-zero group).
float FitSymmetricScale(int n, int nmax, const float* x, int8_t* L);

// Q3_K's symmetric fit: start from nmax / max, then up to 5 rounds of moving single levels while
// the weighted (x^2) least-squares objective improves. L gets level + nmax.
float FitQ3Scale(int n, int nmax, const float* x, int8_t* L);

}  // namespace sluice
