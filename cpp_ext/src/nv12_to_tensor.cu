#include "dispatch.h"
#include "nv12_to_tensor.h"
#include "pixel.cuh"

namespace stylecam {

template <typename T>
__global__ void nv12_to_tensor_kernel(Nv12Source src, int src_h, int src_w, T* dst, stylecam_geometry g) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= g.out_w || y >= g.out_h) return;
  store_rgb(dst, g, y, x, sample(src, g, src_h, src_w, y, x));
}

template <typename T>
cudaError_t launch_nv12_to_tensor(const uint8_t* y, size_t y_pitch, const uint8_t* uv, size_t uv_pitch, int src_h,
                                  int src_w, T* dst, stylecam_geometry g, cudaStream_t stream) {
  const dim3 block(32, 8);
  nv12_to_tensor_kernel<T><<<grid_for(g.out_h, g.out_w, block), block, 0, stream>>>(
      Nv12Source{y, y_pitch, uv, uv_pitch}, src_h, src_w, dst, g);
  return cudaGetLastError();
}

template <typename T>
static cudaError_t host_nv12_to_tensor(const uint8_t* y, size_t y_pitch, const uint8_t* uv, size_t uv_pitch,
                                       int src_h, int src_w, T* dst, stylecam_geometry g) {
  const Nv12Source source{y, y_pitch, uv, uv_pitch};
  for (int r = 0; r < g.out_h; ++r)
    for (int c = 0; c < g.out_w; ++c) store_rgb(dst, g, r, c, sample(source, g, src_h, src_w, r, c));
  return cudaSuccess;
}

}  // namespace stylecam

using namespace stylecam;

static bool valid_args(const uint8_t* y, size_t y_pitch, const uint8_t* uv, size_t uv_pitch, int src_h, int src_w,
                       void* dst, const stylecam_geometry& g) {
  return y && uv && dst && src_h > 0 && src_w > 0 && src_h % 2 == 0 && src_w % 2 == 0 &&
         y_pitch >= static_cast<size_t>(src_w) && uv_pitch >= static_cast<size_t>(src_w) && valid(g);
}

extern "C" int stylecam_nv12_to_tensor(const uint8_t* y, size_t y_pitch, const uint8_t* uv, size_t uv_pitch,
                                       int src_h, int src_w, void* dst, int dtype, stylecam_geometry g,
                                       void* stream) {
  STYLECAM_REQUIRE(valid_args(y, y_pitch, uv, uv_pitch, src_h, src_w, dst, g));
  STYLECAM_DISPATCH_DTYPE(dtype, T, launch_nv12_to_tensor(y, y_pitch, uv, uv_pitch, src_h, src_w,
                                                          static_cast<T*>(dst), g, static_cast<cudaStream_t>(stream)))
}

extern "C" int stylecam_host_nv12_to_tensor(const uint8_t* y, size_t y_pitch, const uint8_t* uv, size_t uv_pitch,
                                            int src_h, int src_w, void* dst, int dtype, stylecam_geometry g) {
  STYLECAM_REQUIRE(valid_args(y, y_pitch, uv, uv_pitch, src_h, src_w, dst, g));
  STYLECAM_DISPATCH_DTYPE(dtype, T, host_nv12_to_tensor(y, y_pitch, uv, uv_pitch, src_h, src_w,
                                                        static_cast<T*>(dst), g))
}
