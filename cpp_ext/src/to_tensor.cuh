// The network-tensor writer both input formats share: a kernel, its launcher and its host twin, templated on the
// pixel source (Bgr8Source, Nv12Source) and the tensor element type.
#pragma once
#include "check.h"
#include "pixel.cuh"

namespace stylecam {

template <typename Source, typename T>
__global__ void to_tensor_kernel(Source src, int src_h, int src_w, T* dst, stylecam_geometry g) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= g.out_w || y >= g.out_h) return;
  store_rgb(dst, g, y, x, sample(src, g, src_h, src_w, y, x));
}

template <typename Source, typename T>
cudaError_t launch_to_tensor(Source src, int src_h, int src_w, T* dst, stylecam_geometry g, cudaStream_t stream) {
  const dim3 block(32, 8);  // a warp writes 32 consecutive floats of each plane
  to_tensor_kernel<<<grid_for(g.out_h, g.out_w, block), block, 0, stream>>>(src, src_h, src_w, dst, g);
  return cudaGetLastError();
}

template <typename Source, typename T>
cudaError_t host_to_tensor(Source src, int src_h, int src_w, T* dst, stylecam_geometry g) {
  for (int y = 0; y < g.out_h; ++y)
    for (int x = 0; x < g.out_w; ++x) store_rgb(dst, g, y, x, sample(src, g, src_h, src_w, y, x));
  return cudaSuccess;
}

}  // namespace stylecam
