#include "dispatch.h"
#include "nv12_to_tensor.h"
#include "to_tensor.cuh"

namespace stylecam {

template <typename T>
cudaError_t launch_nv12_to_tensor(const uint8_t* y, size_t y_pitch, const uint8_t* uv, size_t uv_pitch, int src_h,
                                  int src_w, T* dst, stylecam_geometry g, cudaStream_t stream) {
  return launch_to_tensor(Nv12Source{y, y_pitch, uv, uv_pitch}, src_h, src_w, dst, g, stream);
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
  STYLECAM_DISPATCH_DTYPE(dtype, T, host_to_tensor(Nv12Source{y, y_pitch, uv, uv_pitch}, src_h, src_w,
                                                   static_cast<T*>(dst), g))
}
