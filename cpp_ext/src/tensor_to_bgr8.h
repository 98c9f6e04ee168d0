// Network output → BGR8 frame: crop, clamp, bilinear resize to the frame's size where the network ran at another
// (a scale), strength blend with the original frame and rounding, in one pass.
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

#include "stylecam_ops.h"

namespace stylecam {

template <typename T>
cudaError_t launch_tensor_to_bgr8(const T* src, stylecam_geometry g, int dst_h, int dst_w, const uint8_t* original,
                                  size_t original_pitch, uint8_t* dst, size_t dst_pitch, float strength,
                                  cudaStream_t stream);

}  // namespace stylecam
