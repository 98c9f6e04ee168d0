// NV12 (Jetson CSI cameras, hardware decoders) → network tensor, with the same resize and padding as BGR8.
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

#include "stylecam_ops.h"

namespace stylecam {

template <typename T>
cudaError_t launch_nv12_to_tensor(const uint8_t* y, size_t y_pitch, const uint8_t* uv, size_t uv_pitch, int src_h,
                                  int src_w, T* dst, stylecam_geometry g, cudaStream_t stream);

}  // namespace stylecam
