// Error handling shared by the ops: every CUDA call and argument check returns its cudaError_t to the caller.
#pragma once
#include <cuda_runtime.h>

#include "stylecam_ops.h"

#define STYLECAM_CUDA(call)                          \
  do {                                               \
    const cudaError_t stylecam_err_ = (call);        \
    if (stylecam_err_ != cudaSuccess) return stylecam_err_; \
  } while (0)

#define STYLECAM_REQUIRE(condition) \
  do {                              \
    if (!(condition)) return cudaErrorInvalidValue; \
  } while (0)

namespace stylecam {

inline bool valid(const stylecam_geometry& g) {
  return g.out_h > 0 && g.out_w > 0 && g.content_h > 0 && g.content_w > 0 && g.top >= 0 && g.left >= 0 &&
         g.top + g.content_h <= g.out_h && g.left + g.content_w <= g.out_w;
}

inline dim3 grid_for(int h, int w, dim3 block) {
  return dim3((w + block.x - 1) / block.x, (h + block.y - 1) / block.y);
}

}  // namespace stylecam
