// Per-pixel arithmetic shared by the kernels and their host twins (__host__ __device__): one definition, so a
// CPU test of the twin checks what the GPU computes.
#pragma once
#include <cuda_fp16.h>
#include <math.h>
#include <stdint.h>

#include "stylecam_ops.h"

#define STYLECAM_HD __host__ __device__ __forceinline__

namespace stylecam {

struct Bgr {
  float b, g, r;  // 0..255, not rounded
};

// numpy's "symmetric" padding for any offset: ... 1 0 | 0 1 … n-1 | n-1 n-2 …, periodic with period 2n.
STYLECAM_HD int reflect(int i, int n) {
  const int period = 2 * n;
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - 1 - i;
}

// One axis of cv2.resize INTER_LINEAR: source index pair and the weight of the second one.
struct Tap {
  int i0, i1;
  float w1;
};

STYLECAM_HD Tap linear_tap(int dst, int dst_size, int src_size) {
  if (dst_size == src_size) return {dst, dst, 0.0f};
  const float s = (dst + 0.5f) * (static_cast<float>(src_size) / dst_size) - 0.5f;
  int i0 = static_cast<int>(floorf(s));
  float w1 = s - i0;
  if (i0 < 0) return {0, 0, 0.0f};
  if (i0 >= src_size - 1) return {src_size - 1, src_size - 1, 0.0f};
  return {i0, i0 + 1, w1};
}

STYLECAM_HD Bgr lerp(Bgr a, Bgr b, float w) {
  return {a.b + w * (b.b - a.b), a.g + w * (b.g - a.g), a.r + w * (b.r - a.r)};
}

// Tensor pixel (y, x) → the content pixel it shows: inside the content, or reflected into it.
STYLECAM_HD void content_pixel(const stylecam_geometry& g, int y, int x, int* cy, int* cx) {
  *cy = reflect(y - g.top, g.content_h);
  *cx = reflect(x - g.left, g.content_w);
}

// Bilinear sample of any pixel source (`at(y, x)` → Bgr) resized from src_h×src_w to the content size.
template <typename At>
STYLECAM_HD Bgr sample(const At& at, const stylecam_geometry& g, int src_h, int src_w, int y, int x) {
  int cy, cx;
  content_pixel(g, y, x, &cy, &cx);
  if (g.content_h == src_h && g.content_w == src_w) return at(cy, cx);  // no resize: one fetch
  const Tap ty = linear_tap(cy, g.content_h, src_h), tx = linear_tap(cx, g.content_w, src_w);
  const Bgr top = lerp(at(ty.i0, tx.i0), at(ty.i0, tx.i1), tx.w1);
  const Bgr bottom = lerp(at(ty.i1, tx.i0), at(ty.i1, tx.i1), tx.w1);
  return lerp(top, bottom, ty.w1);
}

struct Bgr8Source {
  const uint8_t* data;
  size_t pitch;
  STYLECAM_HD Bgr operator()(int y, int x) const {
    const uint8_t* p = data + y * pitch + 3 * x;
    return {static_cast<float>(p[0]), static_cast<float>(p[1]), static_cast<float>(p[2])};
  }
};

// BT.601 limited range with OpenCV's coefficients (color_yuv: ITUR_BT_601_C*), clamped to 0..255.
struct Nv12Source {
  const uint8_t* y;
  size_t y_pitch;
  const uint8_t* uv;
  size_t uv_pitch;
  STYLECAM_HD Bgr operator()(int r, int c) const {
    const float luma = 1.164f * fmaxf(static_cast<float>(y[r * y_pitch + c]) - 16.0f, 0.0f);
    const uint8_t* chroma = uv + (r / 2) * uv_pitch + (c & ~1);
    const float u = chroma[0] - 128.0f, v = chroma[1] - 128.0f;
    return {fminf(fmaxf(luma + 2.018f * u, 0.0f), 255.0f),
            fminf(fmaxf(luma - 0.391f * u - 0.813f * v, 0.0f), 255.0f),
            fminf(fmaxf(luma + 1.596f * v, 0.0f), 255.0f)};
  }
};

template <typename T>
STYLECAM_HD T from_float(float v);
template <>
STYLECAM_HD float from_float<float>(float v) { return v; }
template <>
STYLECAM_HD __half from_float<__half>(float v) { return __float2half_rn(v); }

STYLECAM_HD float to_float(float v) { return v; }
STYLECAM_HD float to_float(__half v) { return __half2float(v); }

// Writes the RGB planes of one tensor pixel.
template <typename T>
STYLECAM_HD void store_rgb(T* dst, const stylecam_geometry& g, int y, int x, Bgr c) {
  const size_t plane = static_cast<size_t>(g.out_h) * g.out_w, i = static_cast<size_t>(y) * g.out_w + x;
  const float scale = 1.0f / 255.0f;
  dst[i] = from_float<T>(c.r * scale);
  dst[plane + i] = from_float<T>(c.g * scale);
  dst[2 * plane + i] = from_float<T>(c.b * scale);
}

STYLECAM_HD uint8_t blend8(float stylized, uint8_t original, float strength) {
  float v = fminf(fmaxf(stylized, 0.0f), 1.0f) * 255.0f;
  if (strength < 1.0f) v = strength * v + (1.0f - strength) * original;
  return static_cast<uint8_t>(rintf(v));  // round half to even, as numpy.rint
}

// Output pixel (y, x) of the frame: crop, clamp, blend, round.
template <typename T>
STYLECAM_HD void tensor_pixel_to_bgr8(const T* src, const stylecam_geometry& g, const uint8_t* original,
                                      size_t original_pitch, uint8_t* dst, size_t dst_pitch, float strength, int y,
                                      int x) {
  const size_t plane = static_cast<size_t>(g.out_h) * g.out_w;
  const size_t i = static_cast<size_t>(y + g.top) * g.out_w + (x + g.left);
  const uint8_t* o = original + y * original_pitch + 3 * x;
  const uint8_t b = blend8(to_float(src[2 * plane + i]), o[0], strength);
  const uint8_t gr = blend8(to_float(src[plane + i]), o[1], strength);
  const uint8_t r = blend8(to_float(src[i]), o[2], strength);
  uint8_t* d = dst + y * dst_pitch + 3 * x;
  d[0] = b;
  d[1] = gr;
  d[2] = r;
}

}  // namespace stylecam
