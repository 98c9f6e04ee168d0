// BGR8 frame → network tensor, with optional bilinear resize and reflect padding, in one pass.
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

#include "stylecam_ops.h"

namespace stylecam {

template <typename T>
cudaError_t launch_bgr8_to_tensor(const uint8_t* src, size_t src_pitch, int src_h, int src_w, T* dst,
                                  stylecam_geometry g, cudaStream_t stream);

}  // namespace stylecam
