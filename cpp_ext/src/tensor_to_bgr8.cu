#include "dispatch.h"
#include "pixel.cuh"
#include "tensor_to_bgr8.h"

namespace stylecam {

template <typename T>
__global__ void tensor_to_bgr8_kernel(const T* src, stylecam_geometry g, int dst_h, int dst_w, const uint8_t* original,
                                      size_t original_pitch, uint8_t* dst, size_t dst_pitch, float strength) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= dst_w || y >= dst_h) return;
  tensor_pixel_to_bgr8(src, g, dst_h, dst_w, original, original_pitch, dst, dst_pitch, strength, y, x);
}

template <typename T>
cudaError_t launch_tensor_to_bgr8(const T* src, stylecam_geometry g, int dst_h, int dst_w, const uint8_t* original,
                                  size_t original_pitch, uint8_t* dst, size_t dst_pitch, float strength,
                                  cudaStream_t stream) {
  const dim3 block(32, 8);
  tensor_to_bgr8_kernel<T><<<grid_for(dst_h, dst_w, block), block, 0, stream>>>(
      src, g, dst_h, dst_w, original, original_pitch, dst, dst_pitch, strength);
  return cudaGetLastError();
}

template <typename T>
static cudaError_t host_tensor_to_bgr8(const T* src, stylecam_geometry g, int dst_h, int dst_w,
                                       const uint8_t* original, size_t original_pitch, uint8_t* dst,
                                       size_t dst_pitch, float strength) {
  for (int y = 0; y < dst_h; ++y)
    for (int x = 0; x < dst_w; ++x)
      tensor_pixel_to_bgr8(src, g, dst_h, dst_w, original, original_pitch, dst, dst_pitch, strength, y, x);
  return cudaSuccess;
}

}  // namespace stylecam

using namespace stylecam;

static bool valid_args(const void* src, const stylecam_geometry& g, int dst_h, int dst_w, const uint8_t* original,
                       size_t original_pitch, uint8_t* dst, size_t dst_pitch, float strength) {
  const size_t row = 3 * static_cast<size_t>(dst_w);
  return src && original && dst && dst_h > 0 && dst_w > 0 && original_pitch >= row && dst_pitch >= row &&
         strength >= 0.0f && strength <= 1.0f && valid(g);
}

extern "C" int stylecam_tensor_to_bgr8(const void* src, int dtype, stylecam_geometry g, int dst_h, int dst_w,
                                       const uint8_t* original, size_t original_pitch, uint8_t* dst,
                                       size_t dst_pitch, float strength, void* stream) {
  STYLECAM_REQUIRE(valid_args(src, g, dst_h, dst_w, original, original_pitch, dst, dst_pitch, strength));
  STYLECAM_DISPATCH_DTYPE(dtype, T, launch_tensor_to_bgr8(static_cast<const T*>(src), g, dst_h, dst_w, original,
                                                          original_pitch, dst, dst_pitch, strength,
                                                          static_cast<cudaStream_t>(stream)))
}

extern "C" int stylecam_host_tensor_to_bgr8(const void* src, int dtype, stylecam_geometry g, int dst_h, int dst_w,
                                            const uint8_t* original, size_t original_pitch, uint8_t* dst,
                                            size_t dst_pitch, float strength) {
  STYLECAM_REQUIRE(valid_args(src, g, dst_h, dst_w, original, original_pitch, dst, dst_pitch, strength));
  STYLECAM_DISPATCH_DTYPE(dtype, T, host_tensor_to_bgr8(static_cast<const T*>(src), g, dst_h, dst_w, original,
                                                        original_pitch, dst, dst_pitch, strength))
}
