#include "bgr8_to_tensor.h"
#include "dispatch.h"
#include "pixel.cuh"

namespace stylecam {

template <typename T>
__global__ void bgr8_to_tensor_kernel(Bgr8Source src, int src_h, int src_w, T* dst, stylecam_geometry g) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= g.out_w || y >= g.out_h) return;
  store_rgb(dst, g, y, x, sample(src, g, src_h, src_w, y, x));
}

template <typename T>
cudaError_t launch_bgr8_to_tensor(const uint8_t* src, size_t src_pitch, int src_h, int src_w, T* dst,
                                  stylecam_geometry g, cudaStream_t stream) {
  const dim3 block(32, 8);
  bgr8_to_tensor_kernel<T><<<grid_for(g.out_h, g.out_w, block), block, 0, stream>>>(Bgr8Source{src, src_pitch},
                                                                                    src_h, src_w, dst, g);
  return cudaGetLastError();
}

template <typename T>
static cudaError_t host_bgr8_to_tensor(const uint8_t* src, size_t src_pitch, int src_h, int src_w, T* dst,
                                       stylecam_geometry g) {
  const Bgr8Source source{src, src_pitch};
  for (int y = 0; y < g.out_h; ++y)
    for (int x = 0; x < g.out_w; ++x) store_rgb(dst, g, y, x, sample(source, g, src_h, src_w, y, x));
  return cudaSuccess;
}

}  // namespace stylecam

using namespace stylecam;

static bool valid_args(const uint8_t* src, size_t src_pitch, int src_h, int src_w, void* dst,
                       const stylecam_geometry& g) {
  return src && dst && src_h > 0 && src_w > 0 && src_pitch >= 3 * static_cast<size_t>(src_w) && valid(g);
}

extern "C" int stylecam_bgr8_to_tensor(const uint8_t* src, size_t src_pitch, int src_h, int src_w, void* dst,
                                       int dtype, stylecam_geometry g, void* stream) {
  STYLECAM_REQUIRE(valid_args(src, src_pitch, src_h, src_w, dst, g));
  STYLECAM_DISPATCH_DTYPE(dtype, T, launch_bgr8_to_tensor(src, src_pitch, src_h, src_w, static_cast<T*>(dst), g,
                                                          static_cast<cudaStream_t>(stream)))
}

extern "C" int stylecam_host_bgr8_to_tensor(const uint8_t* src, size_t src_pitch, int src_h, int src_w, void* dst,
                                            int dtype, stylecam_geometry g) {
  STYLECAM_REQUIRE(valid_args(src, src_pitch, src_h, src_w, dst, g));
  STYLECAM_DISPATCH_DTYPE(dtype, T, host_bgr8_to_tensor(src, src_pitch, src_h, src_w, static_cast<T*>(dst), g))
}
