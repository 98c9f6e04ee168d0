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

STYLECAM_HD Bgr add(Bgr a, Bgr b, float w) { return {a.b + w * b.b, a.g + w * b.g, a.r + w * b.r}; }

// Bilinear sample (cv2.resize INTER_LINEAR) of any pixel source, `at(y, x)` → Bgr, at pixel (y, x) of a
// dst_h×dst_w resize of its src_h×src_w image.
template <typename At>
STYLECAM_HD Bgr linear(const At& at, int src_h, int src_w, int dst_h, int dst_w, int y, int x) {
  const Tap ty = linear_tap(y, dst_h, src_h), tx = linear_tap(x, dst_w, src_w);
  const Bgr top = lerp(at(ty.i0, tx.i0), at(ty.i0, tx.i1), tx.w1);
  const Bgr bottom = lerp(at(ty.i1, tx.i0), at(ty.i1, tx.i1), tx.w1);
  return lerp(top, bottom, ty.w1);
}

// One axis of cv2.resize INTER_AREA shrinking (its computeResizeAreaTab): output pixel `dst` covers source
// [f1, f1 + scale); each source pixel weighs its overlap with that span, over the span's width (`cell`).
struct Span {
  float f1, f2, cell;
  int first, last;  // source pixels with any weight
};

STYLECAM_HD Span area_span(int dst, int dst_size, int src_size) {
  const float scale = static_cast<float>(src_size) / dst_size;
  // the integer product keeps f1 exact where it is whole, as cv2's double arithmetic does
  const float f1 = static_cast<float>(dst * src_size) / dst_size, f2 = f1 + scale;
  const int last = static_cast<int>(ceilf(f2)) - 1;
  return {f1, f2, fminf(scale, src_size - f1), static_cast<int>(floorf(f1)), last < src_size ? last : src_size - 1};
}

STYLECAM_HD float overlap(const Span& s, int i) {
  return fmaxf(fminf(fminf(s.f2, i + 1.0f) - fmaxf(s.f1, static_cast<float>(i)), s.cell), 0.0f);
}

// Area average (cv2.resize INTER_AREA) of `at` at pixel (y, x) of a dst_h×dst_w shrink of its src_h×src_w image,
// rounded to 8 bits as OpenCV does: half up for halving both sides (its SIMD resizeAreaFast), half to even otherwise.
template <typename At>
STYLECAM_HD Bgr area(const At& at, int src_h, int src_w, int dst_h, int dst_w, int y, int x) {
  const Span sy = area_span(y, dst_h, src_h), sx = area_span(x, dst_w, src_w);
  Bgr sum{0.0f, 0.0f, 0.0f};  // Σ pixel × overlap: whole numbers for whole factors, so that ties stay exact
  for (int i = sy.first; i <= sy.last; ++i) {
    Bgr row{0.0f, 0.0f, 0.0f};
    for (int j = sx.first; j <= sx.last; ++j) row = add(row, at(i, j), overlap(sx, j));
    sum = add(sum, row, overlap(sy, i));
  }
  const float inv = 1.0f / (sy.cell * sx.cell);
  const Bgr c{sum.b * inv, sum.g * inv, sum.r * inv};
  if (src_h == 2 * dst_h && src_w == 2 * dst_w) return {floorf(c.b + 0.5f), floorf(c.g + 0.5f), floorf(c.r + 0.5f)};
  return {rintf(c.b), rintf(c.g), rintf(c.r)};
}

// Tensor pixel (y, x) from any pixel source resized from src_h×src_w to the content size as frames.resize does:
// area averaging down (no aliasing), bilinear up, into 8 bits as OpenCV gives the NumPy path.
template <typename At>
STYLECAM_HD Bgr sample(const At& at, const stylecam_geometry& g, int src_h, int src_w, int y, int x) {
  int cy, cx;
  content_pixel(g, y, x, &cy, &cx);
  if (g.content_h == src_h && g.content_w == src_w) return at(cy, cx);  // no resize: one fetch
  // 64-bit pixel counts: a 50,000-pixel-wide panorama overflows an int
  if (static_cast<long long>(g.content_h) * g.content_w < static_cast<long long>(src_h) * src_w)
    return area(at, src_h, src_w, g.content_h, g.content_w, cy, cx);
  const Bgr c = linear(at, src_h, src_w, g.content_h, g.content_w, cy, cx);
  return {rintf(c.b), rintf(c.g), rintf(c.r)};
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

STYLECAM_HD float to255(float stylized) { return fminf(fmaxf(stylized, 0.0f), 1.0f) * 255.0f; }

// The network's content pixel (y, x), clamped, in 0..255: rounded to 8 bits where it is resized afterwards, as the
// NumPy path's to_bgr8 does before cv2.resize.
template <typename T>
struct TensorSource {
  const T* data;
  stylecam_geometry g;
  bool round8;
  STYLECAM_HD Bgr operator()(int y, int x) const {
    const size_t plane = static_cast<size_t>(g.out_h) * g.out_w;
    const size_t i = static_cast<size_t>(y + g.top) * g.out_w + (x + g.left);
    const Bgr c{to255(to_float(data[2 * plane + i])), to255(to_float(data[plane + i])), to255(to_float(data[i]))};
    return round8 ? Bgr{rintf(c.b), rintf(c.g), rintf(c.r)} : c;
  }
};

STYLECAM_HD uint8_t blend8(float v, uint8_t original, float strength) {  // v in 0..255
  if (strength < 1.0f) v = strength * v + (1.0f - strength) * original;
  return static_cast<uint8_t>(rintf(v));  // round half to even, as numpy.rint
}

// Output pixel (y, x) of a dst_h×dst_w frame: crop, clamp, bilinear resize where the content has another size,
// blend, round.
template <typename T>
STYLECAM_HD void tensor_pixel_to_bgr8(const T* src, const stylecam_geometry& g, int dst_h, int dst_w,
                                      const uint8_t* original, size_t original_pitch, uint8_t* dst, size_t dst_pitch,
                                      float strength, int y, int x) {
  const bool resized = dst_h != g.content_h || dst_w != g.content_w;
  const TensorSource<T> content{src, g, resized};
  const Bgr c = resized ? linear(content, g.content_h, g.content_w, dst_h, dst_w, y, x) : content(y, x);
  const uint8_t* o = original + y * original_pitch + 3 * x;
  uint8_t* d = dst + y * dst_pitch + 3 * x;
  const uint8_t b = blend8(c.b, o[0], strength), gr = blend8(c.g, o[1], strength), r = blend8(c.r, o[2], strength);
  d[0] = b;
  d[1] = gr;
  d[2] = r;
}

}  // namespace stylecam
